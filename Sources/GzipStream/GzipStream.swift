// GzipStream: see the module's files.
