"""Inside a request: your own spans, database queries (N+1, slow), outgoing calls."""
