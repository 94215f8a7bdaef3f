"""The day-ahead price file: fetched over HTTP on a period, parsed (JSON or CSV), stored as the
series ``file`` source, so a changed file makes new limits and an unchanged one nothing.

JSON: the body of ``POST /v1/prices``. CSV: a header with ``start,duration_s,price`` and
optionally ``currency``, ``unit`` and ``series_id`` (from the first row; defaults: the
configured currency, KWH, ``day-ahead``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import Principal
from gridlink.budgets.events import BudgetPublisher
from gridlink.errors import InvalidInputError
from gridlink.openadr.backoff import Backoff
from gridlink.prices import service
from gridlink.prices.recompute import recompute_and_publish
from gridlink.prices.schemas import PriceSeriesIn
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)

SOURCE = "file"
PRICE_FILE = Principal(token_id=None, role="system", name="price-file")
CSV_COLUMNS = ("start", "duration_s", "price")


def parse_price_file(
    content: bytes, *, fmt: str, content_type: str, currency: str
) -> PriceSeriesIn:
    """Parse a price file; raises InvalidInputError naming what is wrong."""
    if fmt == "auto":
        fmt = "json" if "json" in content_type or content.lstrip()[:1] in (b"{", b"[") else "csv"
    try:
        if fmt == "json":
            return PriceSeriesIn.model_validate(json.loads(content))
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
        if not rows or any(c not in rows[0] for c in CSV_COLUMNS):
            raise InvalidInputError("file", f"CSV needs the columns {', '.join(CSV_COLUMNS)}")
        first = rows[0]
        return PriceSeriesIn.model_validate(
            {
                "series_id": first.get("series_id") or "day-ahead",
                "currency": first.get("currency") or currency,
                "unit": first.get("unit") or "KWH",
                "intervals": [{c: r[c] for c in CSV_COLUMNS} for r in rows],
            }
        )
    except (ValueError, UnicodeDecodeError) as err:
        if isinstance(err, ValidationError):
            first_error = err.errors()[0]
            where = ".".join(str(p) for p in first_error["loc"])
            raise InvalidInputError(f"file.{where}", first_error["msg"]) from err
        if isinstance(err, InvalidInputError):
            raise
        raise InvalidInputError("file", f"not valid {fmt.upper()}: {err}") from err


class PriceFilePoller:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: GridlinkSettings,
        publisher: BudgetPublisher,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not settings.price_file_url:
            raise ValueError("price_file_url is required for the price file poller")
        self._url = settings.price_file_url
        self._factory = factory
        self._settings = settings
        self._publisher = publisher
        self._clock = clock
        self._http = httpx.Client(timeout=settings.openadr_timeout_s, transport=transport)
        self.backoff = Backoff(settings.price_file_poll_interval_s, settings.openadr_backoff_max_s)

    def close(self) -> None:
        self._http.close()

    def poll(self) -> bool:
        """Fetch and store the file if the backoff allows; True when it was stored."""
        now = self._clock()
        if not self.backoff.ready(now):
            return False
        try:
            response = self._http.get(self._url)
            response.raise_for_status()
            series = parse_price_file(
                response.content,
                fmt=self._settings.price_file_format,
                content_type=response.headers.get("content-type", ""),
                currency=self._settings.price_currency,
            )
        except (httpx.HTTPError, InvalidInputError) as err:
            delay_s = self.backoff.failed(now)
            log.warning("price file %s failed (%s); retry in %.0f s", self._url, err, delay_s)
            return False
        self.backoff.succeeded()

        def work(session: Session) -> str | None:
            changed = service.ingest_series(
                session,
                source=SOURCE,
                series_id=series.series_id,
                currency=series.currency,
                unit=series.unit,
                points=[
                    service.PriceInput(i.start, i.duration_s, i.price) for i in series.intervals
                ],
                actor=PRICE_FILE,
                now=now,
                settings=self._settings,
            )
            return f"price file: series {series.series_id}" if changed else None

        try:
            recompute_and_publish(self._factory, self._publisher, self._settings, now, work)
        except InvalidInputError as err:
            log.warning("price file %s refused: %s", self._url, err)
            return False
        return True
