"""Report fixtures: settings with a 10-s telemetry period and a small fleet."""

from __future__ import annotations

import pytest

from gridlink.settings import GridlinkSettings


@pytest.fixture
def report_settings(settings: GridlinkSettings) -> GridlinkSettings:
    return settings.model_copy(
        update={
            "report_sample_period_s": 10.0,
            "report_pre_event_window_min": 60.0,
            "report_hxy_x": 2,
            "report_hxy_y": 3,
            "report_hxy_search_days": 7,
        }
    )
