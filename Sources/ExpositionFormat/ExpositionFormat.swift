// ExpositionFormat: see the module's files.
