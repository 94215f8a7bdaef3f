"""The leader-only jobs of the OpenADR VEN and the price file poller, for the scheduler.

Restart-safe: everything a job needs is in the database (events seen, reports posted, ids), so a
new leader simply runs them again; the first run happens at once when leadership is gained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from functools import wraps

from sqlalchemy.orm import Session, sessionmaker

from gridlink.budgets.events import BudgetPublisher
from gridlink.openadr.ven import OpenAdrVen
from gridlink.prices.poller import PriceFilePoller
from gridlink.scheduler.runner import LeaderJob
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)


def _guarded(name: str, func: Callable[[], object]) -> Callable[[], None]:
    """A job never raises into the scheduler: an unexpected error is logged, the next run
    tries again."""

    @wraps(func)
    def run() -> None:
        try:
            func()
        except Exception:
            log.exception("%s failed; it runs again at its next period", name)

    return run


def integration_jobs(
    factory: sessionmaker[Session],
    settings: GridlinkSettings,
    publisher: BudgetPublisher,
    closers: ExitStack,
) -> list[LeaderJob]:
    """The jobs the settings ask for; their HTTP clients are closed by ``closers``."""
    jobs: list[LeaderJob] = []
    if settings.openadr_enabled:
        ven = OpenAdrVen(factory, settings, publisher)
        closers.callback(ven.close)
        jobs.append(
            LeaderJob(
                "openadr-poll", _guarded("OpenADR poll", ven.poll), settings.openadr_poll_interval_s
            )
        )
        jobs.append(
            LeaderJob(
                "openadr-report",
                _guarded("OpenADR reports", ven.report),
                settings.openadr_report_interval_s,
            )
        )
        if settings.openadr_mqtt:
            jobs.append(
                LeaderJob(
                    "openadr-mqtt",
                    _guarded("OpenADR MQTT", ven.mqtt_ensure),
                    settings.openadr_poll_interval_s,
                )
            )
    if settings.price_file_url:
        poller = PriceFilePoller(factory, settings, publisher)
        closers.callback(poller.close)
        jobs.append(
            LeaderJob(
                "price-file",
                _guarded("price file", poller.poll),
                settings.price_file_poll_interval_s,
            )
        )
    return jobs
