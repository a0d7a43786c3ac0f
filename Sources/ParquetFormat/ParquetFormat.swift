// ParquetFormat: see the module's files.
