"""A day of overlapping curtailments driven through a virtual clock.

Facility: 100 kW max, 10 kW non-GPU overhead. Fleet: node P (tier 0, protected) and nodes F1, F2
(tier 1), each 2-6 kW. Managers schedule and change curtailments during the day; at every budget
boundary the test does what the scheduler does (heartbeat, recompute) and checks the facility
timeline and every node's allocation, through the API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pytest import approx

from gridlink.budgets.service import recompute_budget, upcoming_boundaries
from tests.gridlink.conftest import T0, Api, iso


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def expected(t: datetime) -> tuple[float, dict[str, float]]:
    """Facility limit (kW) and allocations (W) by hand, from the rules: the lowest limit wins;
    GPU budget = limit - 10 kW; tier 0 is served to its cap first; identical tier-1 nodes
    share equally; below the sum of minimums everyone gets exactly its minimum."""
    h = (t - T0).total_seconds() / 3600
    limits = [100.0]
    if 8 <= h < 11.5:
        limits.append(24.0)  # E1 (patched at 11:00 to end at 11:30)
    if 10 <= h < 14:
        limits.append(20.0)  # E2: 80 % below the 100 kW baseline
    if 16 <= h < 17:
        limits.append(15.0)  # E3: 85 kW below the baseline
    if 20 <= h < 21 or 44 <= h < 45:
        limits.append(22.0)  # E4: daily at 20:00, twice
    limit = min(limits)
    gpu_w = (limit - 10.0) * 1000
    if gpu_w < 6000:  # below the three minimums: infeasible, everyone at minimum
        return limit, {"P": 2000.0, "F1": 2000.0, "F2": 2000.0}
    p = min(6000.0, gpu_w - 4000)
    f = min(6000.0, max(2000.0, (gpu_w - p) / 2))
    return limit, {"P": p, "F1": f, "F2": f}


def post(api: Api, path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    response = api.request(method, path, role="manager", json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def check(api: Api, nodes: dict[str, dict[str, Any]], t: datetime, full: bool = True) -> None:
    limit, alloc = expected(t)
    timeline = api.request(
        "GET",
        "/v1/timeline",
        role="auditor",
        params={"start": iso(t), "end": iso(t + timedelta(minutes=1))},
    ).json()
    assert [s["facility_limit_kw"] for s in timeline["segments"]] == [approx(limit)], t
    assert timeline["segments"][0]["gpu_budget_kw"] == approx(limit - 10.0)
    for label, node in nodes.items():
        trajectory = api.request(
            "GET", f"/v1/nodes/{node['id']}/allocation", role="node", node_id=node["id"]
        ).json()
        (now_segment,) = [s for s in trajectory["segments"] if s["start"] <= iso_z(t) < s["end"]]
        assert abs(now_segment["power_w"] - alloc[label]) < 1e-6, (t, label, now_segment)
        if not full:
            continue
        detail = api.request("GET", f"/v1/nodes/{node['id']}", role="manager").json()
        assert abs(detail["current_allocation_w"] - alloc[label]) < 1e-6, (t, label)
        assert detail["status"] == "online"


def iso_z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def heartbeat(api: Api, nodes: dict[str, dict[str, Any]]) -> None:
    for node in nodes.values():
        response = api.request(
            "POST",
            "/v1/nodes",
            role="node",
            node_id=node["id"],
            json={
                "name": node["name"],
                "gpu_type": node["gpu_type"],
                "gpu_count": node["gpu_count"],
                "gpu_min_cap_w": node["gpu_min_cap_w"],
                "gpu_max_cap_w": node["gpu_max_cap_w"],
                "idle_power_w": node["idle_power_w"],
                "flexibility_tier": node["flexibility_tier"],
            },
        )
        assert response.status_code == 200


def test_a_day_of_overlapping_curtailments(api: Api) -> None:
    spec = {"gpu_count": 4, "gpu_min_cap_w": 400.0, "gpu_max_cap_w": 1400.0, "idle_power_w": 400.0}
    nodes = {
        "P": api.register_node("P", flexibility_tier=0, **spec),
        "F1": api.register_node("F1", flexibility_tier=1, **spec),
        "F2": api.register_node("F2", flexibility_tier=1, **spec),
    }
    assert {n["min_power_w"] for n in nodes.values()} == {2000.0}
    assert {n["max_power_w"] for n in nodes.values()} == {6000.0}
    check(api, nodes, T0)

    e1 = post(api, "/v1/curtailments", {"start": iso(at(8)), "end": iso(at(12)), "limit_kw": 24})
    e3 = post(
        api,
        "/v1/curtailments",
        {"start": iso(at(16)), "duration_s": 3600, "reduction_kw": 85, "priority": 2},
    )
    e4 = post(
        api,
        "/v1/curtailments",
        {
            "start": iso(at(20)),
            "duration_s": 3600,
            "limit_kw": 22,
            "recurrence": {"freq": "daily", "count": 2},
        },
    )
    published = len(api.publisher.published)
    assert published == 3 + 3  # three registrations, three curtailments

    replanned: list[datetime] = []
    new_versions: list[datetime] = []
    api.clock.set(T0)
    e2_posted = e1_patched = False
    while True:
        due = upcoming_boundaries(api.session, after=api.clock.now, until=at(48))
        if not e2_posted and (not due or due[0] > at(9.5)):
            due = [at(9.5), *due]
        if not e1_patched and (not due or due[0] > at(11)):
            due = [at(11), *due]
        if not due:
            break
        t = api.clock.set(due[0])
        heartbeat(api, nodes)
        if t == at(9.5):
            e2 = post(
                api,
                "/v1/curtailments",
                {"start": iso(at(10)), "end": iso(at(14)), "reduction_pct": 80, "name": "E2"},
            )
            e2_posted = True
        elif t == at(11):
            e1 = post(api, f"/v1/curtailments/{e1['id']}", {"end": iso(at(11.5))}, method="PATCH")
            e1_patched = True
        else:
            # What the scheduler does at a boundary: recompute. The plan already held this
            # boundary, so nothing new is stored, except when the sliding horizon brings new
            # information into view.
            version = recompute_budget(api.session, now=t, reason="boundary", settings=api.settings)
            replanned.append(t)
            if version is not None:
                new_versions.append(t)
        api.session.commit()
        check(api, nodes, t)
        check(api, nodes, t + timedelta(minutes=29), full=False)

    hours = [(t - T0).total_seconds() / 3600 for t in replanned]
    assert hours == [8, 10, 11.5, 14, 16, 17, 20, 21, 44, 45]
    # At 21:00 the 24 h horizon first covers the second 20:00 occurrence (day 2); at 44 h the
    # horizon grows past that occurrence's end, which the previous version (ending inside the
    # event) did not cover. Every other boundary was already in the plan.
    assert new_versions == [at(21), at(44)]
    assert len(api.publisher.published) == published + 2  # E2 created, E1 patched

    # The whole day at once: segments, contributing and binding events.
    day = api.request("GET", "/v1/timeline", params={"start": iso(T0), "end": iso(at(24))}).json()[
        "segments"
    ]
    summary = [
        (
            s["start"][11:16],
            s["end"][11:16],
            round(s["facility_limit_kw"], 6),
            s["binding_event_id"],
        )
        for s in day
    ]
    assert summary == [
        ("00:00", "08:00", 100.0, None),
        ("08:00", "10:00", 24.0, e1["id"]),
        ("10:00", "11:30", 20.0, e2["id"]),
        ("11:30", "14:00", 20.0, e2["id"]),
        ("14:00", "16:00", 100.0, None),
        ("16:00", "17:00", 15.0, e3["id"]),
        ("17:00", "20:00", 100.0, None),
        ("20:00", "21:00", 22.0, e4["id"]),
        ("21:00", "00:00", 100.0, None),
    ]
    assert day[2]["contributing_event_ids"] == sorted([e1["id"], e2["id"]])
    assert day[3]["contributing_event_ids"] == [e2["id"]]
