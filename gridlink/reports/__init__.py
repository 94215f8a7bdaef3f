"""Delivered-reduction audit reports: four baselines, immutable hashed versions, JSON/CSV/HTML."""
