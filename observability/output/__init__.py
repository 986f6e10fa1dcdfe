"""The way out: loggers, the writer thread, rotating files shared by processes."""
