"""``pals proxy``: an admission-limiting, OpenAI-compatible reverse proxy in front of vLLM."""

from pals_core.proxy.app import ProxyApp
from pals_core.proxy.limiter import AdmissionLimiter

__all__ = ["AdmissionLimiter", "ProxyApp"]
