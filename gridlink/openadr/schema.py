"""Validation against the vendored OpenADR 3.1.0 definitions (``gridlink/openadr/spec``).

The OpenAPI 3.0 document is turned into JSON Schema (draft 4 plus ``nullable``) once, on first
use: the VEN checks payload values against the standard's payload enumerations, and the test VTN
checks every request and response against the object schemas.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, FormatChecker

SPEC_DIR = Path(__file__).resolve().parent / "spec"

__all__ = ["SPEC_DIR", "object_errors", "payload_errors", "spec_document"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _nullable_to_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema ``anyOf [schema, null]``, recursively."""
    if isinstance(node, list):
        return [_nullable_to_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _nullable_to_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        default = converted.pop("default", None)
        wrapped: dict[str, Any] = {"anyOf": [converted, {"type": "null"}]}
        if default is not None:
            wrapped["default"] = default
        return wrapped
    return converted


@cache
def spec_document() -> dict[str, Any]:
    """The OpenAPI document as loaded from ``openadr3.yaml`` (not converted)."""
    with (SPEC_DIR / "openadr3.yaml").open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


@cache
def _components() -> dict[str, Any]:
    components: dict[str, Any] = _nullable_to_schema(spec_document()["components"])
    return components


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def _date_time(value: object) -> bool:
        if not isinstance(value, str) or not _RFC3339.match(value):
            return False
        try:
            datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            return False
        return True

    return checker


@cache
def _validator(schema_name: str) -> Draft4Validator:
    if schema_name not in _components()["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in openadr3.yaml")
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    return Draft4Validator(schema, format_checker=_format_checker())


def object_errors(schema_name: str, instance: object) -> list[str]:
    """Every violation of ``components/schemas/<schema_name>``, as ``path: message``."""
    errors = sorted(_validator(schema_name).iter_errors(instance), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '<root>'}: {e.message}" for e in errors]


@cache
def _payload_definitions(kind: str) -> dict[str, Any]:
    name = "event-interval-payloads" if kind == "event" else "report-payloads"
    with (SPEC_DIR / f"{name}.schema.yaml").open(encoding="utf-8") as handle:
        definitions: dict[str, Any] = yaml.safe_load(handle)["definitions"]
    return definitions


def payload_errors(kind: str, payload_type: str, values: list[Any]) -> list[str] | None:
    """Violations of the standard's rule for ``payload_type`` values (``kind``: event or
    report); None when the standard defines no such payload type."""
    definition = _payload_definitions(kind).get(payload_type)
    if definition is None:
        return None
    schema = {k: v for k, v in definition.items() if k not in ("$id", "description")}
    items = schema.get("items")
    if isinstance(items, dict) and "anyOf" in items:
        # Points ({x, y}) are referenced from the OpenAPI document; check only the outer shape.
        schema = {k: v for k, v in schema.items() if k != "items"}
    validator = Draft4Validator(schema)
    return [f"{payload_type}: {e.message}" for e in validator.iter_errors(values)]
