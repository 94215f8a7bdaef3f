"""gridlink: the demand-response gateway that turns grid signals into GPU-node power budgets."""

__version__ = "0.1.0"

__all__ = ["__version__"]
