"""OpenAPI links: which response feeds which operation's path id.

A link says, e.g., that the ``id`` in the body of ``POST /v1/curtailments``'s 201 is the
``curtailment_id`` of ``GET|PATCH|DELETE /v1/curtailments/{curtailment_id}``. Clients and
generators read them from the document; the stateful fuzz test
(``tests/gridlink/api/test_fuzz_stateful.py``) follows them to chain real calls (create, read,
change, cancel) instead of guessing ids that do not exist.

Declared here as a table and written into the document by :func:`add_links`; a link whose
source or target operation is missing (the app was built without that router) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Link:
    """``source`` (method, path) answering one of ``statuses`` feeds ``target``'s path
    parameter ``parameter`` with the runtime expression ``value``."""

    source: tuple[str, str]
    statuses: tuple[str, ...]
    target: tuple[str, str]
    parameter: str
    value: str = "$response.body#/id"


CURTAILMENT = "/v1/curtailments/{curtailment_id}"
NODE = "/v1/nodes/{node_id}"
_CURTAILMENT_OPS = (("GET", CURTAILMENT), ("PATCH", CURTAILMENT), ("DELETE", CURTAILMENT))
_NODE_OPS = (
    ("GET", NODE),
    ("GET", f"{NODE}/allocation"),
    ("POST", f"{NODE}/telemetry"),
    ("GET", f"{NODE}/telemetry/history"),
)


def _fan_out(
    sources: list[tuple[str, str, tuple[str, ...], str]],
    targets: tuple[tuple[str, str], ...],
    parameter: str,
) -> list[Link]:
    return [
        Link((method, path), statuses, target, parameter, value)
        for method, path, statuses, value in sources
        for target in targets
    ]


LINKS: list[Link] = [
    # a curtailment, as created, read, changed (a new id) or cancelled, or the newest listed
    *_fan_out(
        [
            ("POST", "/v1/curtailments", ("200", "201"), "$response.body#/id"),
            ("GET", CURTAILMENT, ("200",), "$response.body#/id"),
            ("PATCH", CURTAILMENT, ("200",), "$response.body#/id"),
            ("DELETE", CURTAILMENT, ("200",), "$response.body#/id"),
            ("GET", "/v1/curtailments", ("200",), "$response.body#/0/id"),
        ],
        _CURTAILMENT_OPS,
        "curtailment_id",
    ),
    # a node, as registered, read, or the first listed; its telemetry names it too
    *_fan_out(
        [
            ("POST", "/v1/nodes", ("200", "201"), "$response.body#/id"),
            ("GET", NODE, ("200",), "$response.body#/id"),
            ("GET", "/v1/nodes", ("200",), "$response.body#/0/id"),
            ("POST", f"{NODE}/telemetry", ("201",), "$response.body#/node_id"),
        ],
        _NODE_OPS,
        "node_id",
    ),
    # the budget version a node's reading names, or the newest listed
    Link(
        ("GET", NODE),
        ("200",),
        ("GET", "/v1/budgets/{version_id}"),
        "version_id",
        "$response.body#/budget_version_id",
    ),
    Link(
        ("GET", "/v1/budgets"),
        ("200",),
        ("GET", "/v1/budgets/{version_id}"),
        "version_id",
        "$response.body#/0/id",
    ),
    # a report, as generated, or the newest listed
    Link(("POST", "/v1/reports"), ("201",), ("GET", "/v1/reports/{report_id}"), "report_id"),
    Link(
        ("GET", "/v1/reports"),
        ("200",),
        ("GET", "/v1/reports/{report_id}"),
        "report_id",
        "$response.body#/0/id",
    ),
]


def _link_name(method: str, path: str, parameter: str) -> str:
    words = [w.strip("{}") for w in path.split("/") if w and w != "v1"]
    return (
        "".join(w.title().replace("_", "") for w in [method.lower(), *words])
        + "By"
        + (parameter.title().replace("_", ""))
    )


def add_links(schema: dict[str, Any], links: list[Link] = LINKS) -> None:
    """Write ``links`` into ``schema`` (an OpenAPI document), by target ``operationId``."""
    paths = schema["paths"]

    def operation(method: str, path: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = paths.get(path, {}).get(method.lower())
        return found

    for link in links:
        source, target = operation(*link.source), operation(*link.target)
        if source is None or target is None:
            continue
        for status in link.statuses:
            response = source["responses"].get(status)
            if response is None:
                continue
            response.setdefault("links", {})[_link_name(*link.target, link.parameter)] = {
                "operationId": target["operationId"],
                "parameters": {link.parameter: link.value},
            }
