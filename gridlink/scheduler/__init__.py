"""Budget boundaries persisted in ``schedule_jobs`` and fired exactly once, on the leader replica
(PostgreSQL advisory lock); housekeeping jobs. Started by ``gridlink.realtime`` in the lifespan."""
