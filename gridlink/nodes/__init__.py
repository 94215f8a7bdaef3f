"""Serving nodes: registration and heartbeat (idempotent by name), status from last contact."""
