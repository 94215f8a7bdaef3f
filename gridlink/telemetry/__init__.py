"""Node telemetry: batch ingestion, facility power, and downsampling with retention."""
