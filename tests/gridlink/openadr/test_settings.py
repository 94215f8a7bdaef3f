"""OpenADR and price settings are checked together, with messages naming the setting."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gridlink.settings import GridlinkSettings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"openadr_enabled": True}, "openadr_vtn_url"),
        ({"openadr_client_id": "ven"}, "openadr_client_secret"),
        ({"price_policy": "thresholds"}, "price_thresholds"),
        ({"price_policy": "economic"}, "price_token_value_per_mtok"),
        ({"price_thresholds": [{"above": 0.3}]}, "exactly one of limit_kw or reduction_pct"),
        ({"openadr_page_limit": 100}, "openadr_page_limit"),
        ({"openadr_simple_reductions_pct": [0, 10]}, "openadr_simple_reductions_pct"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GridlinkSettings(**values)


def test_thresholds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINK_PRICE_POLICY", "thresholds")
    monkeypatch.setenv("GRIDLINK_PRICE_THRESHOLDS", '[{"above": 0.3, "reduction_pct": 20}]')
    monkeypatch.setenv("GRIDLINK_OPENADR_PROGRAM_IDS", '["p-1", "p-2"]')
    settings = GridlinkSettings()
    assert settings.price_thresholds[0].reduction_pct == 20
    assert settings.openadr_program_ids == ["p-1", "p-2"]
