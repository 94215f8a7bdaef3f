"""The audit log: every write records who, what, when, and the entity before and after."""
