// CSVFormat: see the module's files.
