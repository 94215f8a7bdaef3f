"""Shared by the fleet benchmarks: a simulated fleet (``pals_core.agent``) running in this process
against a gateway subprocess."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pals_core.agent.fleet import FleetOptions, build_fleet, parse_spec
from pals_core.agent.link import LinkConfig
from pals_core.agent.runner import Agent, ControlThread
from pals_core.agent.spool import TelemetrySpool


@contextmanager
def running_fleet(
    spec: str, gateway_url: str, token: str, *, telemetry_batch_s: float = 2.0
) -> Iterator[Agent]:
    """The fleet's agent, running on a thread, until the block ends; profiles are cached in
    ``var/fleet-profiles``."""
    nodes, now_s = build_fleet(
        parse_spec(spec), FleetOptions(profile_dir=Path("var/fleet-profiles"))
    )
    with tempfile.TemporaryDirectory() as folder:
        spool = TelemetrySpool(Path(folder) / "spool.db")
        agent = Agent(
            nodes,
            gateway_url=gateway_url,
            tokens=lambda _name: token,
            spool=spool,
            link_config=LinkConfig(
                telemetry_batch_s=telemetry_batch_s, start_spread_s=min(20.0, 0.05 * len(nodes))
            ),
            control=ControlThread(nodes, 0.1, now_s, counters_age_s=now_s.counters_age_s),
        )
        thread = agent.start_in_thread()
        try:
            yield agent
        finally:
            agent.stop()
            thread.join(timeout=30)
            spool.close()


def wait_online(agent: Agent, timeout_s: float = 300.0) -> float:
    """Seconds until every node holds a trajectory and its stream is open."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if all(n.status.version_id is not None and n.status.stream_connected for n in agent.nodes):
            return time.monotonic() - start
        time.sleep(0.2)
    raise SystemExit("the fleet did not come online")
