"""Facility budgets: versions recomputed from events, nodes and telemetry; node allocations."""
