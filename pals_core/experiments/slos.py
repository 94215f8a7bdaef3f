"""The latency SLOs of the paper experiment, from MLPerf Inference.

MLCommons' ``loadgen/mlperf.conf`` (MLPerf Inference v5.1) sets, per LLM benchmark, a p99 time to
first token (``ttft_latency``) and a p99 time per output token (``tpot_latency``) for the
Server scenario and, for some, a tighter *interactive* variant. Each simulated model takes the
limits of the nearest benchmark model (same family and size where MLPerf has it):

- llama-3.1-8b: llama3_1-8b; relaxed TTFT 2 s / TPOT 100 ms, tight (interactive) 0.5 s / 30 ms.
- llama-3.1-70b: llama2-70b; relaxed 2 s / 200 ms, tight 0.45 s / 40 ms.
- qwen3-30b-a3b: mixtral-8x7b (an MoE); relaxed 2 s / 200 ms; tight from llama2-70b-interactive,
  0.45 s / 40 ms.
- qwen3-235b-a22b-fp8: llama3_1-405b; relaxed 6 s / 175 ms, tight 4.5 s / 80 ms.

Mixtral has no interactive limits; the 70B interactive ones are the nearest. For Qwen3-235B the
dense 405B is nearer in size than DeepSeek-R1 (671B parameters), the other MoE benchmark.

MLPerf's TPOT is each request's mean time per output token, at p99 over requests; the QoS window
applies the limit to the p99 of *every* inter-token gap (``vllm:inter_token_latency_seconds``),
which is stricter.
"""

from __future__ import annotations

from dataclasses import dataclass

from pals_core.errors import ConfigurationError

SLO_LEVELS: tuple[str, ...] = ("relaxed", "tight")


@dataclass(frozen=True, slots=True)
class LatencySLO:
    ttft_p99_s: float
    tpot_p99_s: float
    source: str
    """The MLPerf benchmark and scenario the limits come from."""


_SLOS: dict[str, dict[str, LatencySLO]] = {
    "llama-3.1-8b": {
        "relaxed": LatencySLO(2.0, 0.100, "llama3_1-8b Server"),
        "tight": LatencySLO(0.5, 0.030, "llama3_1-8b-interactive Server"),
    },
    "llama-3.1-70b": {
        "relaxed": LatencySLO(2.0, 0.200, "llama2-70b Server"),
        "tight": LatencySLO(0.45, 0.040, "llama2-70b-interactive Server"),
    },
    "qwen3-30b-a3b": {
        "relaxed": LatencySLO(2.0, 0.200, "mixtral-8x7b Server"),
        "tight": LatencySLO(0.45, 0.040, "llama2-70b-interactive Server"),
    },
    "qwen3-235b-a22b-fp8": {
        "relaxed": LatencySLO(6.0, 0.175, "llama3_1-405b Server"),
        "tight": LatencySLO(4.5, 0.080, "llama3_1-405b-interactive Server"),
    },
}


def latency_slo(model: str, level: str) -> LatencySLO:
    """The SLO of ``model`` at ``level`` ("relaxed" or "tight"); a clear error otherwise."""
    if level not in SLO_LEVELS:
        raise ConfigurationError(f"unknown SLO level {level!r}; allowed: {', '.join(SLO_LEVELS)}")
    if model not in _SLOS:
        raise ConfigurationError(
            f"no MLPerf SLO for model {model!r}; models with one: {', '.join(sorted(_SLOS))}"
        )
    return _SLOS[model][level]
