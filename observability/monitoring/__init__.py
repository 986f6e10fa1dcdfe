"""The metrics' instruments, what they read from the system, and the /metrics view."""
