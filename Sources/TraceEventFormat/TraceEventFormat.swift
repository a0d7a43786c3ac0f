// TraceEventFormat: see the module's files.
