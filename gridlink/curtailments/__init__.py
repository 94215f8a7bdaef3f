"""Curtailments: facility managers' demand-response events, and idempotent event ingestion."""
