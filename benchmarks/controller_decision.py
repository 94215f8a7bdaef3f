"""Time one PALS ``decide`` call (the full control law: corrections, demand, plan, smoothing).

Builds a model from a simulated profile, then replays observations recorded from a closed-loop
run on the simulator, timing each ``pals_decide`` on a copy of the state (so every call does the
full work of a live period). Prints the median and p99 over all calls.

    .venv/bin/python benchmarks/controller_decision.py [--model llama-3.1-70b --gpus 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _profile import profile_sim_node

from pals_core.control.pals import PalsConfig, PalsController, pals_decide
from pals_core.control.policy import Action, Observation
from pals_core.control.qos import QoSPolicy
from pals_core.control.runtime import run_control_loop
from pals_core.model import PerformanceModel
from pals_core.sim import PoissonWorkload, SaturatingWorkload, build_sim_node, model_profile


class Recorder:
    """Runs PALS and keeps (state before, observation) of every decision."""

    name = "pals"

    def __init__(self, inner: PalsController) -> None:
        self.inner = inner
        self.calls: list[tuple[object, Observation]] = []

    def decide(self, obs: Observation) -> Action:
        self.calls.append((self.inner.state, obs))
        return self.inner.decide(obs)

    def guard(self, obs: Observation) -> Action | None:
        return self.inner.guard(obs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--duration-s", type=float, default=300.0)
    args = parser.parse_args()

    prof_node = build_sim_node(args.model, "H100-SXM", args.gpus, workload=SaturatingWorkload())
    limits = prof_node.gpus[0].power_limit_constraints()
    profile = profile_sim_node(prof_node, args.model, args.gpus, warmup_s=5.0, window_s=10.0)
    model = PerformanceModel.fit(profile)
    mp = model_profile(args.model)
    qos = QoSPolicy(mp.default_itl_p99_slo_s)
    config = PalsConfig()
    capacity = prof_node.max_throughput_tok_s()
    node = build_sim_node(
        args.model,
        "H100-SXM",
        args.gpus,
        seed=3,
        device_variation_frac=0.03,
        workload=PoissonWorkload(0.5 * capacity / mp.chat_output_mean_tok),
    )
    recorder = Recorder(PalsController(model, config, num_gpus=args.gpus, qos=qos))
    budget_w = 0.7 * args.gpus * limits.max_w
    run_control_loop(
        recorder,
        node.gpus,
        node.engine,
        node.clock,
        duration_s=args.duration_s,
        budget_w=lambda t: budget_w if (t // 60) % 2 else None,
    )
    times_us: list[float] = []
    for _ in range(3):
        for state, obs in recorder.calls:
            start = time.perf_counter()
            pals_decide(state, obs, model, config, qos)  # type: ignore[arg-type]
            times_us.append((time.perf_counter() - start) * 1e6)
    times_us.sort()
    p90 = times_us[int(0.9 * len(times_us))]
    p99 = times_us[min(len(times_us) - 1, int(0.99 * len(times_us)))]
    print(
        f"{args.model} x{args.gpus}: {len(times_us)} decide calls, "
        f"median {statistics.median(times_us):.0f} us, p90 {p90:.0f} us, p99 {p99:.0f} us, "
        f"table {model.table.throughput_tok_s.shape[0]} caps x "
        f"{model.table.throughput_tok_s.shape[1]} batches"
    )


if __name__ == "__main__":
    main()
