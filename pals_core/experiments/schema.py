"""The JSON schema of ``results.json`` (checked by the tests; useful to anyone reading the file)."""

from __future__ import annotations

from typing import Any

from pals_core.experiments.scenarios import CONTROLLERS

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}

RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "scenario",
        "node",
        "model",
        "load_frac",
        "budget",
        "budget_kind",
        "seed",
        "controller",
        "duration_s",
        "offered_tok_s",
        "capacity_tok_s",
        "max_power_w",
        "itl_slo_s",
        "ttft_slo_s",
        "physics",
        "slo",
        "stock_batch",
        "tokens_per_j",
        "throughput_tok_s",
        "mean_power_w",
        "peak_power_w",
        "qos_windows",
        "qos_violated",
        "qos_ttft_violated",
        "qos_violated_frac",
        "qos_risk_frac",
        "budget_time_over_frac",
        "budget_energy_over_frac",
        "budget_falls",
        "settling_s",
        "settling_all_s",
        "fixed_config",
        "wall_s",
    ],
    "properties": {
        "controller": {"enum": list(CONTROLLERS)},
        "budget_kind": {"enum": ["none", "static", "dynamic"]},
        "seed": {"type": "integer"},
        "tokens_per_j": _NUM,
        "qos_windows": {"type": "integer", "minimum": 0},
        "qos_violated": {"type": "integer", "minimum": 0},
        "qos_violated_frac": {"type": "number", "minimum": 0, "maximum": 1},
        "budget_time_over_frac": _NUM_OR_NULL,
        "budget_energy_over_frac": _NUM_OR_NULL,
        "settling_s": {"type": "array", "items": _NUM},
        "fixed_config": {"type": ["object", "null"]},
    },
}

SUMMARY_FIELDS: tuple[str, ...] = (
    "efficiency_vs_oracle_matched_qos_min",
    "efficiency_vs_static_cap_matched_qos_min",
    "qos_excess_windows_vs_cap_only_max",
    "pals_qos_violation_frac",
    "budget_energy_over_frac_max",
    "budget_time_over_frac_max",
    "binding_falls",
    "settling_s_p95",
    "efficiency_gain_vs_stock_mean",
    "efficiency_gain_vs_stock_max",
    "efficiency_gain_vs_static_cap_mean",
)
"""The results contract: these keys under ``summary`` (and under ``variants.<name>``)."""

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*SUMMARY_FIELDS, "goals"],
    "properties": {
        **{f: _NUM_OR_NULL for f in SUMMARY_FIELDS},
        "goals": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["target", "op", "value", "met"],
            },
        },
    },
}

RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["meta", "summary", "oracle", "runs"],
    "properties": {
        "meta": {"type": "object", "required": ["wall_s", "jobs", "matrix", "controllers"]},
        "summary": SUMMARY_SCHEMA,
        "variants": {"type": "object", "additionalProperties": SUMMARY_SCHEMA},
        "oracle": {"type": "object"},
        "runs": {"type": "array", "minItems": 1, "items": RUN_SCHEMA},
    },
}
