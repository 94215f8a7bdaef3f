"""pals_core: power-aware LLM serving on a GPU node (joint power-cap and batch-size control)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
