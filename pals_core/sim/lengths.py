"""Request-length distributions for the simulated engine.

Chat prompts and outputs are right-skewed, so both are lognormal. The output mean is the model's
own verbosity (ML.ENERGY ``avg_output_len`` for lm-arena-chat: Llama ~400, Qwen3 ~900); the
prompt mean is the lm-arena-chat prompt length inferred by the fitting script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pals_core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class LogNormalLengths:
    """A lognormal token count with the given mean, clipped to ``[min_tok, max_tok]``."""

    mean_tok: float
    sigma: float = 1.0
    min_tok: int = 1
    max_tok: int = 8192

    def __post_init__(self) -> None:
        if not self.mean_tok >= 1:
            raise ConfigurationError(f"mean_tok must be >= 1, got {self.mean_tok}")
        if not self.sigma >= 0:
            raise ConfigurationError(f"sigma must be >= 0, got {self.sigma}")
        if not 1 <= self.min_tok <= self.max_tok:
            raise ConfigurationError("need 1 <= min_tok <= max_tok")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu = math.log(self.mean_tok) - 0.5 * self.sigma**2
        draws = np.rint(rng.lognormal(mu, self.sigma, n))
        return np.clip(draws, self.min_tok, self.max_tok).astype(np.int64)


@dataclass(frozen=True, slots=True)
class RequestLengths:
    prompt: LogNormalLengths
    output: LogNormalLengths


def chat_lengths(
    output_mean_tok: float, prompt_mean_tok: float, output_sigma: float = 0.8
) -> RequestLengths:
    """Chat-like lengths (lm-arena-chat shape): lognormal prompts and outputs."""
    return RequestLengths(
        prompt=LogNormalLengths(prompt_mean_tok, sigma=1.0, max_tok=8192),
        output=LogNormalLengths(output_mean_tok, sigma=output_sigma, max_tok=8192),
    )
