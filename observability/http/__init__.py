"""The request path: one request's lifecycle from the middleware to its terminal line."""
