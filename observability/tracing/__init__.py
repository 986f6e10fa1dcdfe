"""Who and which request: the context in contextvars, IDs, trace context, the client's address."""
