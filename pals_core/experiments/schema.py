"""The JSON schema of ``results.json`` (checked by the tests; useful to anyone reading the file)."""

from __future__ import annotations

from typing import Any

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
        "tokens_per_j",
        "throughput_tok_s",
        "mean_power_w",
        "peak_power_w",
        "qos_windows",
        "qos_violated",
        "qos_violated_frac",
        "budget_time_over_frac",
        "budget_energy_over_frac",
        "budget_falls",
        "settling_s",
        "settling_all_s",
        "fixed_config",
        "wall_s",
    ],
    "properties": {
        "controller": {"enum": ["stock", "cap-only", "batch-only", "oracle-static", "pals"]},
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
    "efficiency_gain_vs_stock_max",
    "efficiency_gain_vs_stock_mean",
    "efficiency_vs_oracle_min",
    "qos_violation_ratio_cap_only_over_pals_min",
    "qos_violation_ratio_pals_zero_scenarios",
    "budget_time_over_frac_max",
    "budget_energy_over_frac_max",
    "settling_s_p95",
    "pals_qos_violation_frac_max",
)

RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["meta", "summary", "oracle", "runs"],
    "properties": {
        "meta": {"type": "object", "required": ["wall_s", "jobs", "matrix", "controllers"]},
        "summary": {
            "type": "object",
            "required": [*SUMMARY_FIELDS, "goals"],
            "properties": {
                **{f: _NUM_OR_NULL for f in SUMMARY_FIELDS if not f.endswith("_scenarios")},
                "qos_violation_ratio_pals_zero_scenarios": {
                    "type": "array",
                    "items": {"type": "string"},
                },
                "goals": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["target", "op", "value", "met"],
                    },
                },
            },
        },
        "oracle": {"type": "object"},
        "runs": {"type": "array", "minItems": 1, "items": RUN_SCHEMA},
    },
}
