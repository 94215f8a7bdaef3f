"""Prometheus ``/metrics`` of the agent: one collector reads every node's latest status when
scraped (nothing is updated per tick), labelled by node name.

Metrics: ``pals_agent_budget_watts`` (handed to the controller), ``pals_agent_allocation_watts``
(in force now; absent when unconstrained), ``pals_agent_power_watts`` (measured GPU power),
``pals_agent_power_cap_watts{gpu}``, ``pals_agent_batch_limit``, ``pals_agent_mode{mode}``
(1 for the current mode), ``pals_agent_budget_infeasible``, ``pals_agent_qos_windows_total``,
``pals_agent_qos_violations_total``, ``pals_agent_trajectory_version``,
``pals_agent_trajectories_rejected_total``, ``pals_agent_stream_connected``,
``pals_agent_buffered_samples``, ``pals_agent_dropped_samples_total``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pals_core.agent.node import NodeControl
from pals_core.agent.spool import TelemetrySpool


class AgentCollector(Collector):
    def __init__(self, nodes: Callable[[], Sequence[NodeControl]], spool: TelemetrySpool) -> None:
        self._nodes = nodes
        self._spool = spool

    def collect(self) -> Iterator[Metric]:
        label = ["node"]
        gauges = {
            name: GaugeMetricFamily(f"pals_agent_{name}", text, labels=label)
            for name, text in (
                ("budget_watts", "GPU power budget handed to the controller"),
                ("allocation_watts", "Allocation in force now (absent: no limit)"),
                ("power_watts", "Measured GPU power"),
                ("batch_limit", "Engine batch limit (max_num_seqs)"),
                ("budget_infeasible", "1 when the allocation is under the node's minimum"),
                ("trajectory_version", "Budget version of the trajectory followed"),
                ("stream_connected", "1 while the allocation stream is open"),
                ("buffered_samples", "Telemetry samples waiting on disk"),
            )
        }
        caps = GaugeMetricFamily(
            "pals_agent_power_cap_watts", "GPU power cap", labels=["node", "gpu"]
        )
        mode = GaugeMetricFamily("pals_agent_mode", "Current mode (1)", labels=["node", "mode"])
        counters = {
            name: CounterMetricFamily(f"pals_agent_{name}", text, labels=label)
            for name, text in (
                ("qos_windows", "QoS windows judged"),
                ("qos_violations", "QoS windows violated"),
                ("trajectories_rejected", "Trajectories refused as malformed"),
                ("dropped_samples", "Telemetry samples dropped (buffer full or refused)"),
            )
        }
        for node in self._nodes():
            name, status = node.spec.name, node.status
            if status.budget is not None:
                gauges["budget_watts"].add_metric([name], status.budget.power_w)
                gauges["budget_infeasible"].add_metric([name], float(status.budget.infeasible))
                if status.budget.allocation_w is not None:
                    gauges["allocation_watts"].add_metric([name], status.budget.allocation_w)
            gauges["power_watts"].add_metric([name], status.power_w)
            gauges["batch_limit"].add_metric([name], status.batch_limit)
            if status.version_id is not None:
                gauges["trajectory_version"].add_metric([name], status.version_id)
            gauges["stream_connected"].add_metric([name], float(status.stream_connected))
            gauges["buffered_samples"].add_metric([name], self._spool.count(name))
            for i, cap_w in enumerate(status.power_limits_w):
                caps.add_metric([name, str(i)], cap_w)
            mode.add_metric([name, node.mode()], 1.0)
            counters["qos_windows"].add_metric([name], status.qos_windows)
            counters["qos_violations"].add_metric([name], status.qos_violations)
            counters["trajectories_rejected"].add_metric([name], status.rejected_trajectories)
            counters["dropped_samples"].add_metric([name], self._spool.dropped.get(name, 0))
        yield from gauges.values()
        yield caps
        yield mode
        yield from counters.values()


def serve_metrics(
    nodes: Callable[[], Sequence[NodeControl]], spool: TelemetrySpool, host: str, port: int
) -> int:
    """Serve ``/metrics`` on a thread; the port bound (``port`` 0: a free one)."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(nodes, spool))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
