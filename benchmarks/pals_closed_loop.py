"""Closed-loop figures of the PALS controller on the simulator, against stock vLLM and cap-only.

For one model/GPU count: profile a node (seed A), then control another node (seed B, per-device
variation 3 %, optionally a systematic mismatch) through ``run_control_loop`` at several offered
loads (fractions of stock capacity), unconstrained and under static budgets. Prints tok/J, its
gain over stock, QoS-violation windows (pals_core.control.qos), time over budget, and PALS's
states. The experiment stream's harness is the reference for the paper's figures; this script is
the controller's own quick check.

    .venv/bin/python benchmarks/pals_closed_loop.py --model llama-3.1-8b --gpus 1
"""

from __future__ import annotations

import argparse
from ast import literal_eval
from collections import Counter
from dataclasses import dataclass, replace
from itertools import pairwise

from _profile import profile_sim_node

from pals_core.control.baselines import CapOnlyPolicy
from pals_core.control.pals import PalsConfig, PalsController
from pals_core.control.policy import Action, Observation, Policy
from pals_core.control.qos import QoSPolicy, evaluate_window
from pals_core.control.runtime import Sample, run_control_loop
from pals_core.engine.base import EngineMetrics
from pals_core.model import PerformanceModel
from pals_core.sim import PoissonWorkload, SaturatingWorkload, build_sim_node, model_profile


class Fixed:
    """Stock vLLM (max caps, batch 256) or any fixed (cap, batch)."""

    def __init__(self, name: str, cap_w: float | None, batch: int) -> None:
        self.name, self.cap_w, self.batch = name, cap_w, batch

    def decide(self, obs: Observation) -> Action:
        caps = tuple(self.cap_w or g.max_limit_w for g in obs.gpus)
        return Action(power_limits_w=caps, batch_limit=self.batch, state="fixed")

    def guard(self, obs: Observation) -> Action | None:
        return None


@dataclass
class RunResult:
    tok_per_j: float
    served_tok_s: float
    windows: int
    violated: int
    itl_violated: int
    over_budget_frac: float
    states: Counter[str]


def run(
    policy: Policy,
    args: argparse.Namespace,
    load_frac: float,
    budget_w: float | None,
    capacity_tok_s: float,
    mismatch: float,
) -> RunResult:
    prof = model_profile(args.model)
    rate = load_frac * capacity_tok_s / prof.chat_output_mean_tok
    fit = None
    if mismatch:
        base = prof.deployment(
            build_sim_node(args.model, args.gpu, args.gpus).gpu_spec.name, args.gpus
        )
        fit = replace(
            base,
            static_w=base.static_w * (1 + mismatch),
            mem_w=base.mem_w * (1 + mismatch),
            comp_w=base.comp_w * (1 + mismatch),
            eff_flops=base.eff_flops / (1 + mismatch),
        )
    node = build_sim_node(
        args.model,
        args.gpu,
        args.gpus,
        workload=PoissonWorkload(rate),
        seed=args.seed + 100,
        device_variation_frac=0.03,
        noise_frac=0.02,
        fit=fit,
    )
    qos = QoSPolicy(prof.default_itl_p99_slo_s)
    samples: list[Sample] = []
    snaps: list[EngineMetrics] = []

    def on_sample(s: Sample) -> None:
        samples.append(s)
        if abs(s.time_s / qos.window_s - round(s.time_s / qos.window_s)) < 1e-6:
            snaps.append(node.engine.metrics())

    run_control_loop(
        policy,
        node.gpus,
        node.engine,
        node.clock,
        duration_s=args.duration_s,
        budget_w=lambda _t: budget_w,
        on_sample=on_sample,
    )
    warm = [s for s in samples if s.time_s >= args.warmup_s]
    tokens = warm[-1].generation_tokens_total - warm[0].generation_tokens_total
    energy = warm[-1].energy_j - warm[0].energy_j
    target = rate * prof.chat_output_mean_tok
    windows = [
        evaluate_window(a, b, target, qos)
        for a, b in pairwise(snaps)
        if a.timestamp_s >= args.warmup_s
    ]
    over = 0
    for a, b in pairwise(warm):
        p = (b.energy_j - a.energy_j) / (b.time_s - a.time_s)
        if a.power_budget_w is not None and p > a.power_budget_w:
            over += 1
    return RunResult(
        tok_per_j=tokens / energy,
        served_tok_s=tokens / (warm[-1].time_s - warm[0].time_s),
        windows=len(windows),
        violated=sum(w.violated for w in windows),
        itl_violated=sum(w.itl_violated for w in windows),
        over_budget_frac=over / max(1, len(warm) - 1),
        states=Counter(s.state for s in warm),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--gpu", default="H100-SXM")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration-s", type=float, default=180.0)
    parser.add_argument("--warmup-s", type=float, default=30.0)
    parser.add_argument("--loads", default="0.2,0.4,0.6,0.8")
    parser.add_argument("--budgets", default="0.6,0.7,0.8", help="fractions of max node power")
    parser.add_argument("--budget-load", type=float, default=0.8)
    parser.add_argument("--mismatch", type=float, default=0.0)
    parser.add_argument("--set", action="append", default=[], help="PalsConfig field=value")
    args = parser.parse_args()

    prof_node = build_sim_node(
        args.model,
        args.gpu,
        args.gpus,
        workload=SaturatingWorkload(),
        seed=args.seed,
        device_variation_frac=0.03,
    )
    limits = prof_node.gpus[0].power_limit_constraints()
    profile = profile_sim_node(prof_node, args.model, args.gpus, warmup_s=10.0, window_s=20.0)
    model = PerformanceModel.fit(profile)
    qos = QoSPolicy(model_profile(args.model).default_itl_p99_slo_s)
    capacity = build_sim_node(
        args.model, args.gpu, args.gpus, seed=args.seed + 100, device_variation_frac=0.03
    ).max_throughput_tok_s()
    print(
        f"{args.model} x{args.gpus}: stock capacity {capacity:.0f} tok/s, SLO {qos.itl_p99_slo_s}"
    )

    overrides = {k: literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = replace(PalsConfig(), **overrides)  # type: ignore[arg-type]

    def pals() -> PalsController:
        return PalsController(model, config, num_gpus=args.gpus, qos=qos)

    for load in (float(x) for x in args.loads.split(",") if x):
        stock = run(Fixed("stock", None, 256), args, load, None, capacity, args.mismatch)
        ours = run(pals(), args, load, None, capacity, args.mismatch)
        print(
            f"load {load:.0%}: stock {stock.tok_per_j:.3f} tok/J viol {stock.violated}/"
            f"{stock.windows} | pals {ours.tok_per_j:.3f} tok/J "
            f"(+{ours.tok_per_j / stock.tok_per_j - 1:.1%}) viol {ours.violated}/{ours.windows} "
            f"(itl {ours.itl_violated}) served {ours.served_tok_s / (load * capacity):.3f} "
            f"{dict(ours.states)}"
        )
    max_power = args.gpus * limits.max_w
    for frac in (float(x) for x in args.budgets.split(",") if x):
        budget = frac * max_power
        ours = run(pals(), args, args.budget_load, budget, capacity, args.mismatch)
        base = run(CapOnlyPolicy(), args, args.budget_load, budget, capacity, args.mismatch)
        print(
            f"budget {frac:.0%} ({budget:.0f} W) load {args.budget_load:.0%}: cap-only "
            f"{base.tok_per_j:.3f} tok/J viol {base.violated}/{base.windows} "
            f"(itl {base.itl_violated}) | pals "
            f"{ours.tok_per_j:.3f} tok/J viol {ours.violated}/{ours.windows} "
            f"(itl {ours.itl_violated}) over-budget {ours.over_budget_frac:.2%} "
            f"{dict(ours.states)}"
        )


if __name__ == "__main__":
    main()
