"""The paper experiments: scenarios, baselines' oracle, metrics, the runner and the report."""
