"""OpenADR VEN poll cost: N events on the fake VTN (over loopback HTTP), polled into PostgreSQL.

Setup: a scratch PostgreSQL database migrated to head; the spec-validating fake VTN of the tests
(tests/gridlink/openadr/fake_vtn.py) serving one program with N one-hour IMPORT_CAPACITY_LIMIT
events spread over the planning horizon; 8 registered nodes; the VEN (gridlink.openadr.ven) with
its real HTTP client. Three polls are timed end to end (token, paging at limit 50, validation
in the fake VTN, mapping, ingestion, budget recompute, commit):

1. the first poll: N new events, one budget version;
2. the same events again: nothing changes, no version;
3. after 10 % of the events were modified: new versions of those.

    .venv/bin/python benchmarks/openadr_poll.py [--events 200]

Prints seconds per poll and events per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _harness import scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()

    from gridlink.budgets.events import RecordingPublisher
    from gridlink.db.engine import build_engine, build_sessionmaker
    from gridlink.models import Node
    from gridlink.openadr.ven import OpenAdrVen
    from gridlink.settings import GridlinkSettings
    from tests.gridlink.openadr.fake_vtn import FakeVtn
    from tests.gridlink.openadr.fake_vtn_app import serve

    now = datetime.now(UTC).replace(microsecond=0)
    vtn = FakeVtn()
    vtn.add_program("prog-1")

    def event(n: int, limit_kw: float) -> dict[str, object]:
        start = now + timedelta(minutes=5 * n)
        return {
            "programID": "prog-1",
            "intervalPeriod": {
                "start": start.isoformat().replace("+00:00", "Z"),
                "duration": "PT1H",
            },
            "intervals": [
                {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [limit_kw]}]}
            ],
        }

    for n in range(args.events):
        vtn.put_event(f"ev-{n}", event(n, 500.0 + n % 7))
    with scratch_database("bench_openadr") as url, serve(vtn) as server:
        engine = build_engine(url)
        factory = build_sessionmaker(engine)
        with factory() as session:
            for i in range(8):
                session.add(
                    Node(
                        name=f"n{i}",
                        gpu_type="H100",
                        gpu_count=8,
                        min_power_w=2000.0,
                        max_power_w=6000.0,
                    )
                )
            session.commit()
        settings = GridlinkSettings(
            database_url=url,
            openadr_enabled=True,
            openadr_vtn_url=server.url,
            openadr_client_id=vtn.client_id,
            openadr_client_secret=vtn.client_secret,
            openadr_program_ids=["prog-1"],
        )
        publisher = RecordingPublisher()
        ven = OpenAdrVen(factory, settings, publisher)
        rows = []
        for label in ("first poll (all new)", "same events again", "10% modified"):
            if label == "10% modified":
                for n in range(0, args.events, 10):
                    vtn.put_event(f"ev-{n}", event(n, 450.0))
            started = time.perf_counter()
            assert ven.poll(), "the poll failed"
            elapsed = time.perf_counter() - started
            rows.append((label, elapsed, len(publisher.published)))
        ven.close()
        engine.dispose()
    assert vtn.violations == [], vtn.violations
    print(f"OpenADR poll of {args.events} events (fake VTN over loopback, PostgreSQL)")
    for label, elapsed, versions in rows:
        print(
            f"  {label:<22} {elapsed:7.3f} s  {args.events / elapsed:8.0f} events/s  "
            f"budget versions so far: {versions}"
        )


if __name__ == "__main__":
    main()
