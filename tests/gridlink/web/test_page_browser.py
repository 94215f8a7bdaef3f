"""The facility page in a real headless Chromium, against a live gateway and a simulated fleet:
sign in, watch the chart move, schedule a curtailment through the form and see the limit and
the fleet's power drop, see the API's 422 next to the field, and find no write controls as an
auditor. Screenshots land in ``var/test-artifacts/``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gridlink.web.conftest import Gateway, sign_in
from tests.gridlink.web.fleet import SimFleet, sim_fleet

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]
FLEET_NODES = 4


@pytest.fixture(scope="module")
def gateway(start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway()


@pytest.fixture(scope="module")
def fleet(gateway: Gateway) -> Iterator[SimFleet]:
    """The simulated fleet (swap in ``pals fleet --gateway URL --nodes SPEC`` when it lands)."""
    with sim_fleet(gateway.url, gateway.tokens["admin"], nodes=FLEET_NODES) as running:
        yield running


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def page_state(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """() => ({points: gridlinkPage.power.t.length,
                   lastT: gridlinkPage.power.t[gridlinkPage.power.t.length - 1] || 0,
                   lastKw: gridlinkPage.power.kw[gridlinkPage.power.kw.length - 1] || 0,
                   limit: document.querySelector('#kpi-limit').textContent})"""
    )
    return result


def fill_start_now(page: Any) -> None:
    """The start field: this minute, in the browser's local time (as a person would type it)."""
    page.evaluate(
        """() => { const d = new Date(); d.setSeconds(0, 0);
                   const local = new Date(d - d.getTimezoneOffset() * 60000);
                   document.querySelector('#curtail-form [name=start]').value =
                     local.toISOString().slice(0, 16); }"""
    )


def test_manager_sees_live_chart_and_curtails_the_fleet(
    browser: Any, gateway: Gateway, fleet: SimFleet, artifacts: Path
) -> None:
    page = browser.new_page()
    sign_in(page, gateway.url, gateway.tokens["manager"])
    assert page.text_content("#who-role") == "manager"
    page.wait_for_selector("#nodes table tbody tr[data-node-id]")

    # The chart moves: new live points arrive, later in time, with the fleet's power.
    first = wait_for(lambda: page_state(page)["points"] >= 2 and page_state(page), 15, "points")
    later = wait_for(
        lambda: (s := page_state(page))["lastT"] > first["lastT"] + 1 and s, 15, "a newer point"
    )
    assert later["points"] > first["points"]
    saturated_kw = wait_for(
        lambda: (kw := page_state(page)["lastKw"]) > 0.8 * FLEET_NODES * 0.69 and kw,
        20,
        "the saturated fleet's power",
    )
    assert page.text_content("#kpi-limit") == "10.00 kW"

    # A bad form: the API's 422 message appears next to the field.
    fill_start_now(page)
    page.fill("#curtail-form [name=duration_min]", "30")
    page.select_option("#curtail-form [name=kind]", "limit_kw")
    page.fill("#curtail-form [name=value]", "-3")
    page.click("#curtail-submit")
    error = page.wait_for_selector('[data-error-for="value"]:not(:empty)')
    assert "greater than 0" in error.text_content()
    assert page.get_attribute("#curtail-form [name=value]", "aria-invalid") == "true"

    # A good one: limit the facility to 1.5 kW from now; limit and power drop on the chart.
    page.fill("#curtail-form [name=name]", "browser test peak")
    page.fill("#curtail-form [name=value]", "1.5")
    page.click("#curtail-submit")
    page.wait_for_selector("#form-warnings .ok")
    assert page.text_content('[data-error-for="value"]') == ""
    page.wait_for_selector("table.events[data-group=active] >> text=browser test peak")
    wait_for(lambda: page_state(page)["limit"] == "1.50 kW", 15, "the limit tile at 1.50 kW")
    dropped_kw = wait_for(
        lambda: (kw := page_state(page)["lastKw"]) < 1.5 * 1.05 and kw, 30, "the fleet's power drop"
    )
    assert dropped_kw < 0.7 * saturated_kw
    limits = page.evaluate("() => gridlinkPage.limit.map(s => s[2])")
    assert 1.5 in limits and 10.0 in limits
    page.wait_for_timeout(1500)  # a few more live points after the drop, for the screenshot
    page.screenshot(path=str(artifacts / "facility-page.png"), full_page=True)

    # Change it (a new version) and cancel it: the limit goes back up.
    page.click("table.events[data-group=active] button.change")
    assert page.input_value("#curtail-form [name=value]") == "1.5"
    page.fill("#curtail-form [name=value]", "2")
    page.click("#curtail-submit")
    page.wait_for_selector("table.events[data-group=active] >> text=limit 2 kW")
    assert "1 earlier" in page.text_content("table.events[data-group=active]")
    wait_for(lambda: page_state(page)["limit"] == "2.00 kW", 15, "the changed limit")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("table.events[data-group=active] button.cancel")
    page.wait_for_selector("table.events[data-group=past] >> text=cancelled")
    wait_for(lambda: page_state(page)["limit"] == "10.00 kW", 15, "the limit back at 10 kW")

    # One that cannot act as written: in two days, and above what the fleet can draw.
    page.evaluate(
        """() => { const d = new Date(Date.now() + 2 * 86400000);
                   const local = new Date(d - d.getTimezoneOffset() * 60000);
                   document.querySelector('#curtail-form [name=start]').value =
                     local.toISOString().slice(0, 16); }"""
    )
    page.fill("#curtail-form [name=value]", "8")
    page.click("#curtail-submit")
    warnings = page.wait_for_selector("#form-warnings .warning").evaluate(
        "el => el.parentElement.textContent"
    )
    assert "beyond the 24 h planning horizon" in warnings and "will not bind" in warnings
    upcoming = page.text_content("table.events[data-group=upcoming]")
    assert "will not bind" in upcoming
    page.close()


def test_auditor_sees_no_write_controls(browser: Any, gateway: Gateway, artifacts: Path) -> None:
    page = browser.new_page()
    sign_in(page, gateway.url, gateway.tokens["auditor"])
    assert page.text_content("#who-role") == "auditor"
    page.wait_for_selector("#events h3")
    page.wait_for_selector("#nodes table")
    assert page.query_selector("#curtail-form") is None
    assert page.query_selector_all("button.change, button.cancel") == []
    page.screenshot(path=str(artifacts / "facility-page-auditor.png"), full_page=True)
    page.close()


def test_a_node_token_cannot_sign_in(browser: Any, gateway: Gateway, fleet: SimFleet) -> None:
    from tests.gridlink.web.conftest import make_node_token

    token = make_node_token(gateway.database_url, fleet.nodes[0].node_id)
    page = browser.new_page()
    page.goto(gateway.url + "/")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    message = page.wait_for_selector("#signin-error:not(:empty)").text_content()
    assert "node token cannot sign in" in message
    assert page.is_hidden("#app")
    assert page.evaluate("() => sessionStorage.getItem('gridlink.token')") is None
    page.close()
