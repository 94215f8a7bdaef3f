"""Fixed (cap, batch limit) configurations on one paper-experiment scenario: what-if planning.

Runs each configuration of a grid through the experiment runner exactly as ``oracle-static``
replays its pick (same node, load, seed, device variation, noise, QoS windows) on the full
scenario, and prints tok/J, violated QoS windows (ITL / throughput) and the spread of the
windows' ITL p99 over the SLO. A fixed configuration ignores budgets: the peak power column
says under which budget it fits.

    .venv/bin/python benchmarks/fixed_grid.py --model llama-3.1-8b --gpus 1 --load 0.8 \\
        --caps 405 --batches 128,160,192,224,256 --seeds 1,2,3
"""

from __future__ import annotations

import argparse

import numpy as np

from pals_core.experiments.runner import FixedConfig, run_scenario
from pals_core.experiments.scenarios import NodeConfig, Scenario


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--gpu", default="H100-SXM")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--load", type=float, default=0.8, help="fraction of node capacity")
    parser.add_argument("--caps", default="210,280,350,420,490,595,700", help="W per GPU")
    parser.add_argument("--batches", default="64,128,192,256")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--duration-s", type=float, default=180.0)
    parser.add_argument("--warmup-s", type=float, default=30.0)
    args = parser.parse_args()

    node = NodeConfig(args.model, args.gpu, args.gpus)
    print(
        f"{node.key} load {args.load:.0%}, {args.duration_s:.0f} s (warm-up {args.warmup_s:.0f} s)"
    )
    print("seed  cap_w  batch   tok/J  violated (itl/thr)  itl_p99/SLO mean  max  peak_W")
    for seed in (int(s) for s in args.seeds.split(",")):
        scenario = Scenario(node, args.load, "none", None, seed, args.duration_s, args.warmup_s)
        for cap_w in _floats(args.caps):
            for batch in (int(b) for b in _floats(args.batches)):
                fixed = FixedConfig(cap_w, batch)
                result = run_scenario(scenario, "oracle-static", fixed=fixed, keep_windows=True)
                ratio = np.array(result.window_itl_p99_s or [np.nan]) / result.itl_slo_s
                print(
                    f"{seed:4d} {cap_w:6.0f} {batch:6d} {result.tokens_per_j:7.3f}"
                    f"  {result.qos_violated:3d}/{result.qos_windows} "
                    f"({result.qos_itl_violated}/{result.qos_throughput_short})"
                    f"       {np.nanmean(ratio):5.2f}  {np.nanmax(ratio):5.2f}"
                    f"  {result.peak_power_w:6.0f}"
                )


if __name__ == "__main__":
    main()
