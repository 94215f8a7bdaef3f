"""Stateful schemathesis against the app, once per role, on PostgreSQL: sequences of calls that
follow the document's OpenAPI links (gridlink/api/links.py: create a curtailment, then read,
change and cancel that very one; register a node, then read it, send its telemetry, read its
allocation), with the checks of test_fuzz.py: no 5xx, every response matches the document, no
2xx where the role matrix says 403.

Bounded: ``SCENARIOS`` sequences of at most ``STEPS`` calls per role (``GRIDLINK_FUZZ_SCENARIOS``
raises it for a deeper local run). Each sequence starts from the same database (a savepoint
rolled back after it), so Hypothesis can replay and shrink a failing one; the run is
derandomized so CI sees the same sequences each time (``GRIDLINK_FUZZ_RANDOM=1`` draws new
ones).
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ensure_resource_availability
from sqlalchemy import Connection

from gridlink.api.links import LINKS
from tests.gridlink.api.test_fuzz import CHECKS, SKIPPED, _forbidden
from tests.gridlink.conftest import Api

# Also: what a POST just created (and nothing cancelled) is found, no 404 on the id it returned.
# (Not use_after_free: a cancelled curtailment stays readable, by design.)
STATEFUL_CHECKS = [*CHECKS, ensure_resource_availability]
SCENARIOS = int(os.environ.get("GRIDLINK_FUZZ_SCENARIOS", "25"))
STEPS = 8
RANDOM = os.environ.get("GRIDLINK_FUZZ_RANDOM") == "1"

REGISTRATION = ("name", "gpu_type", "gpu_count", "gpu_min_cap_w", "gpu_max_cap_w", "idle_power_w")

# A 2xx each role must get on an operation whose path id a declared link filled from an earlier
# response: a broken link, or sequences that never get past their first call, fail the test.
MUST_FOLLOW = {
    "admin": {"GET /v1/curtailments/{curtailment_id}", "GET /v1/nodes/{node_id}"},
    "manager": {"GET /v1/curtailments/{curtailment_id}", "GET /v1/nodes/{node_id}"},
    "node": {"GET /v1/nodes/{node_id}", "GET /v1/nodes/{node_id}/allocation"},
    "auditor": {"GET /v1/curtailments/{curtailment_id}", "GET /v1/nodes/{node_id}"},
}


def test_every_declared_link_is_in_the_document(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    operation_ids = {
        op["operationId"]: (method.upper(), path)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    found = {
        (method.upper(), path, status, operation_ids[link["operationId"]], name, value)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        for status, response in op["responses"].items()
        for link in response.get("links", {}).values()
        for name, value in link["parameters"].items()
    }
    declared = {
        (*link.source, status, link.target, link.parameter, link.value)
        for link in LINKS
        for status in link.statuses
    }
    assert declared == found
    # every target names its parameter in its path
    assert all("{" + link.parameter + "}" in link.target[1] for link in LINKS)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "manager", "node", "auditor"])
def test_fuzz_linked_sequences_as(role: str, api: Api) -> None:
    if api.session.get_bind().dialect.name != "postgresql":
        pytest.skip("fuzzed on PostgreSQL, where integer and text limits bite")
    own = api.register_node("fuzz-own")
    start = api.clock.now + timedelta(hours=2)
    body = {"start": start.isoformat(), "duration_s": 1800, "limit_kw": 60}
    assert api.request("POST", "/v1/curtailments", json=body).status_code == 201
    headers = api.token(role, node_id=own["id"] if role == "node" else None)
    connection = api.session.get_bind()
    assert isinstance(connection, Connection)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app).exclude(path=sorted(SKIPPED))
    followed: Counter[str] = Counter()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            api.session.close()
            self.savepoint = connection.begin_nested()

        def teardown(self) -> None:
            api.session.close()
            self.savepoint.rollback()

        def before_call(self, case: Any) -> None:
            # A node token only ever registers itself (its agent does, at every start; another
            # name is a 403 and a malformed body a 422, which test_fuzz.py covers): its valid
            # registrations carry its own inventory, so its sequences reach its own data.
            registers = case.method == "POST" and case.operation.path == "/v1/nodes"
            valid = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
            if role == "node" and registers and valid:
                case.body = {k: own[k] for k in REGISTRATION}

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def step(self, input: Any) -> Any:
            output = super().step(input)
            linked = input.transition is not None and not input.transition.is_inferred
            if linked and input.applied_parameters and 200 <= output.response.status_code < 300:
                followed[f"{input.case.method.upper()} {input.case.operation.path}"] += 1
            return output

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=STATEFUL_CHECKS, recorder=self.recorder)
            method, path = case.method.upper(), case.operation.path
            if 200 <= response.status_code < 300:
                assert not _forbidden(method, path, role, case.path_parameters or {}, own["id"]), (
                    f"{role} got {response.status_code} on {method} {case.formatted_path}"
                )

    run_settings = settings(
        max_examples=SCENARIOS,
        stateful_step_count=STEPS,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not RANDOM,
    )
    Machine.run(settings=run_settings)
    assert MUST_FOLLOW[role] <= set(followed), dict(followed)
