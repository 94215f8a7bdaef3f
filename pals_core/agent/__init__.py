"""The node agent: follows the gateway's allocation trajectory with the PALS controller, reports
telemetry, and runs simulated fleets (docs/agent.md)."""
