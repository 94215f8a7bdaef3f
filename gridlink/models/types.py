"""Column types shared by the models."""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Enum, Integer

# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def str_enum(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum column stored as its string value, with a CHECK constraint."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )
