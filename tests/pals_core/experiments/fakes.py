"""A tiny stand-in for a simulated node, to test the experiment plumbing without the simulator.

Physics, crudely: each 20 ms step every running sequence emits one token; the step takes longer
at a lower cap and a larger batch; each GPU draws ``idle + k * sqrt(running)`` up to its cap.
"""

from __future__ import annotations

import inspect
import math
from collections import deque

import numpy as np

from pals_core.device.gpu import GPU, GPUGroup, PowerLimitConstraints
from pals_core.engine.base import (
    ITL_BUCKETS_S,
    TTFT_BUCKETS_S,
    EngineMetrics,
    Histogram,
    ServingEngine,
)
from pals_core.experiments.scenarios import NodeConfig
from pals_core.experiments.simnode import SimNodeHandle, build_node, node_handle
from pals_core.experiments.slos import LatencySLO

OUTPUT_TOKENS = 100
STEP_S = 0.02


class FakeGPU(GPU):
    def __init__(self, index: int) -> None:
        self.index, self.uuid, self.name = index, f"FAKE-{index}", "fake"
        self.limit_w = 700.0
        self.power_w = 80.0
        self.energy_j = 0.0

    def power_limit_constraints(self) -> PowerLimitConstraints:
        return PowerLimitConstraints(200.0, 700.0, 700.0)

    def get_power_limit_w(self) -> float:
        return self.limit_w

    def set_power_limit_w(self, power_w: float) -> None:
        self.limit_w = power_w

    def get_power_w(self) -> float:
        return self.power_w

    def get_energy_j(self) -> float:
        return self.energy_j

    def get_sm_clock_mhz(self) -> float:
        return 1980.0

    def get_temperature_c(self) -> float:
        return 50.0

    def get_memory_used_bytes(self) -> int:
        return 0


class FakeNode:
    def __init__(self, num_gpus: int, rate_req_s: float, seed: int) -> None:
        self.gpus = GPUGroup([FakeGPU(i) for i in range(num_gpus)])
        self.engine = FakeEngine(self)
        self.clock = FakeClock(self)
        self.rate_req_s = rate_req_s
        self.rng = np.random.default_rng(seed)
        self.t = 0.0
        self.next_arrival_s = self.rng.exponential(1.0 / rate_req_s)
        self.waiting: deque[int] = deque()
        self.running: list[int] = []
        self.tokens = 0
        self.arrived = 0
        self.itl_counts = [0] * len(ITL_BUCKETS_S)

    def step(self) -> None:
        while self.next_arrival_s <= self.t:
            self.waiting.append(OUTPUT_TOKENS)
            self.arrived += 1
            self.next_arrival_s += self.rng.exponential(1.0 / self.rate_req_s)
        while self.waiting and len(self.running) < self.engine.limit:
            self.running.append(self.waiting.popleft())
        n = len(self.running)
        cap_w = self.gpus[0].get_power_limit_w()
        demand_w = 80.0 + 40.0 * math.sqrt(n)
        slow = max(1.0, demand_w / cap_w) ** 0.7
        itl_s = STEP_S * (1 + n / 256) * slow
        for gpu in self.gpus:
            assert isinstance(gpu, FakeGPU)
            gpu.power_w = min(cap_w, demand_w)
            gpu.energy_j += gpu.power_w * STEP_S
        emitted = int(n * STEP_S / itl_s)
        self.tokens += emitted
        i = next(k for k, b in enumerate(ITL_BUCKETS_S) if b >= itl_s)
        self.itl_counts[i] += emitted
        self.running = [r - 1 for r in self.running if r > 1]
        self.t += STEP_S

    def max_throughput_tok_s(self) -> float:
        return 256 / (STEP_S * 2)


class FakeClock:
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    def now_s(self) -> float:
        return self.node.t

    def sleep(self, duration_s: float) -> None:
        end = self.node.t + duration_s - 1e-9
        while self.node.t < end:
            self.node.step()


class FakeEngine(ServingEngine):
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.limit = 256

    def get_batch_limit(self) -> int:
        return self.limit

    def set_batch_limit(self, max_num_seqs: int) -> None:
        self.limit = max_num_seqs

    def metrics(self) -> EngineMetrics:
        n = self.node
        cumulative = tuple(int(x) for x in np.cumsum(n.itl_counts))
        return EngineMetrics(
            timestamp_s=n.t,
            generation_tokens_total=n.tokens,
            prompt_tokens_total=0,
            num_requests_running=len(n.running),
            num_requests_waiting=len(n.waiting),
            request_success_total=0,
            time_to_first_token_seconds=Histogram.empty(TTFT_BUCKETS_S),
            inter_token_latency_seconds=Histogram(ITL_BUCKETS_S, cumulative, n.tokens, 0.0),
            kv_cache_usage_perc=0.0,
            requests_arrived_total=n.arrived,
        )


FAKE_SLO = LatencySLO(ttft_p99_s=2.0, tpot_p99_s=0.1, source="test")


def build_fake_node(
    config: NodeConfig, *, load_frac: float, seed: int, **options: object
) -> SimNodeHandle:
    """The fake node behind the same handle as the simulator's (:func:`node_handle`). The
    simulator's other options are checked by name against :func:`build_node` (an unknown one
    fails as it would there) and change nothing here."""
    inspect.signature(build_node).bind(config, load_frac=load_frac, seed=seed, **options)
    capacity = 256 / (STEP_S * 2)
    node = FakeNode(config.num_gpus, load_frac * capacity / OUTPUT_TOKENS, seed)
    return node_handle(
        node, config, load_frac=load_frac, capacity_tok_s=capacity, slo=FAKE_SLO, stock_batch=256
    )
