"""Every status an operation can answer, in the OpenAPI document, with its error body.

Derived from each operation, so a new endpoint is documented the same way: bearer-protected
operations may answer 401 and 403; those with a path id, or an integer ``*_id`` in the body,
404; writes 409 (a conflicting state or concurrent write); those with a body 400 (not readable
as JSON) and 413 (over ``max_body_bytes``); anything with parameters or a body 422 in the one
validation shape (``gridlink.api.errors``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from gridlink.api.links import add_links

WRITES = {"POST", "PATCH", "PUT", "DELETE"}


class ErrorOut(BaseModel):
    detail: str


class ValidationItem(BaseModel):
    type: str
    loc: list[str | int]
    msg: str
    ctx: dict[str, Any] | None = None


class ValidationErrorOut(BaseModel):
    detail: list[ValidationItem]


_REF = "#/components/schemas/{model}"


def _error(description: str, model: type[BaseModel] = ErrorOut) -> dict[str, Any]:
    ref = {"$ref": _REF.format(model=model.__name__)}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _body_names_an_entity(operation: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether the JSON body has an integer ``*_id`` property (``POST /v1/reports``'s
    ``event_id``): an id that may name nothing, so a 404."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = body.get("schema", {}).get("$ref", "")
    properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
    for name, prop in properties.items():
        types = {prop.get("type"), *(p.get("type") for p in prop.get("anyOf", []))}
        if name.endswith("_id") and "integer" in types:
            return True
    return False


def operation_responses(
    path: str, method: str, operation: dict[str, Any], schemas: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The error statuses an operation can answer, from what the document says about it
    (``schemas``: the document's component schemas, for the body)."""
    schemas = schemas or {}
    responses: dict[str, dict[str, Any]] = {}
    if operation.get("security"):
        responses["401"] = _error("No valid bearer token.")
        responses["403"] = _error("The token's role (or node binding) does not allow this.")
    if "{" in path or _body_names_an_entity(operation, schemas):
        responses["404"] = _error("No such entity (named in the path or the body).")
    if method.upper() in WRITES:
        responses["409"] = _error("Conflicts with the current state or a concurrent write.")
    if "requestBody" in operation:
        responses["400"] = _error("The body could not be read (not UTF-8 JSON).")
        responses["413"] = _error("The body is over the size limit.")
    if operation.get("parameters") or "requestBody" in operation:
        responses["422"] = _error("Invalid input.", ValidationErrorOut)
    return responses


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (ErrorOut, ValidationErrorOut):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def document_errors(app: FastAPI) -> None:
    """Have ``app.openapi()`` list every error status of every operation, and the links
    between operations (:mod:`gridlink.api.links`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(_components())
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                found = operation_responses(path, method, operation, components)
                operation["responses"].update(found)
        add_links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
