"""Bearer tokens with roles (admin, manager, node, auditor) and the role matrix."""
