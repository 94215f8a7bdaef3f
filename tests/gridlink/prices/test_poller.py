"""The day-ahead price file: JSON and CSV over HTTP, failures backed off, changes applied."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.errors import InvalidInputError
from gridlink.models.price import PricePoint
from gridlink.prices.poller import PriceFilePoller, parse_price_file
from gridlink.settings import GridlinkSettings
from tests.gridlink.conftest import T0, Api, iso

CSV = (
    "start,duration_s,price,currency,unit\n"
    f"{iso(T0)},3600,0.10,USD,KWH\n"
    f"{iso(T0 + timedelta(hours=1))},3600,0.45,USD,KWH\n"
)


def test_parse_json_and_csv() -> None:
    body = {
        "series_id": "da",
        "currency": "USD",
        "intervals": [{"start": iso(T0), "duration_s": 900, "price": 0.2}],
    }
    parsed = parse_price_file(
        json.dumps(body).encode(), fmt="auto", content_type="application/json", currency="USD"
    )
    assert parsed.intervals[0].duration_s == 900
    from_csv = parse_price_file(CSV.encode(), fmt="auto", content_type="text/csv", currency="USD")
    assert from_csv.series_id == "day-ahead"
    assert [i.price for i in from_csv.intervals] == [0.10, 0.45]


@pytest.mark.parametrize(
    ("content", "fmt", "field"),
    [
        (b"start,price\n2026-07-01T00:00:00Z,1\n", "csv", "columns"),
        (b"start,duration_s,price\nyesterday,3600,1\n", "csv", "start"),
        (b"{not json", "json", "JSON"),
    ],
)
def test_bad_files_say_what_is_wrong(content: bytes, fmt: str, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        parse_price_file(content, fmt=fmt, content_type="", currency="USD")


def test_the_poller_applies_the_file_and_backs_off_on_failure(
    api: Api, factory: sessionmaker[Session]
) -> None:
    state: dict[str, Any] = {"status": 200, "body": CSV}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            state["status"], text=state["body"], headers={"content-type": "text/csv"}
        )

    settings = GridlinkSettings(
        **{
            **api.settings.model_dump(),
            "price_policy": "thresholds",
            "price_thresholds": [{"above": 0.3, "reduction_pct": 20}],
            "price_file_url": "http://prices.invalid/day-ahead.csv",
        }
    )
    poller = PriceFilePoller(
        factory,
        settings,
        api.publisher,
        clock=lambda: api.clock.now,
        transport=httpx.MockTransport(handler),
    )
    assert poller.poll()
    api.session.expire_all()
    rows = api.session.scalars(select(PricePoint).order_by(PricePoint.start_at)).all()
    assert [(r.price, r.rule is not None and "reduce 20" in r.rule) for r in rows] == [
        (0.10, False),
        (0.45, True),
    ]
    assert len(api.publisher.published) == 1
    assert poller.poll()  # unchanged file: no new budget version
    assert len(api.publisher.published) == 1

    state["status"] = 503
    assert not poller.poll()
    assert poller.backoff.failures == 1
    state["status"], state["body"] = 200, "garbage"
    api.clock.advance(seconds=settings.openadr_backoff_max_s + 1)
    assert not poller.poll()  # an invalid file is refused, the known prices stay
    assert len(api.session.scalars(select(PricePoint)).all()) == 2
    poller.close()
