"""Node allocation streams: the SSE endpoint, the per-process feed and broadcaster, PostgreSQL
LISTEN/NOTIFY fan-out across replicas, and ``client.follow_allocation`` for node agents."""
