"""Serving engines: one interface (:class:`ServingEngine`), vLLM and simulated backends."""

from pals_core.engine.base import EngineMetrics, Histogram, ServingEngine

__all__ = ["EngineMetrics", "Histogram", "ServingEngine"]
