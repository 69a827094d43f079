"""The console's pages in a real browser: Debian's headless Chromium driven by Playwright.

As a person would: an operator logs in, opens the map (the network drawn, coloured by gold's
level of service), the recommendations, one plan; approves it and sees its state change; a new
proposal appears on the list without a reload; the audit log shows the approval; a plan on the
corridor draws its time-space diagram and, applied, one signal's measures and coordination
diagrams before and after; the detector-health page draws its day. A viewer finds no
approve button and the API answers the viewer's approval with 403. Each page's screenshot is
saved under ``var/screenshots/`` (a test artifact). Every request the pages make must go to the
console itself: nothing from a CDN or a tile server.

Chromium comes from Debian (``scripts/ensure-chromium``, run by ``make setup``); Playwright's own
browser download cannot run here, so it launches ``/usr/bin/chromium``. A machine without it
fails this test with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from console.app import create_app
from console.network_layers import network_geojson
from core import database
from core.settings import Settings
from field import applications
from optimizer.proposing import store
from sim import signal_config
from tests.unit.console.plans_and_users import PASSWORD, add_people, serving, stored_plan
from tests.unit.console.test_detector_health import DAY, NEWEST, write_day
from tests.unit.console.test_network_layers import T0, incident_row, link_row, write_partition
from tests.unit.console.test_time_space import corridor_plan
from tests.unit.lake.signal_events import phase_2_log, write_lake

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
#: Headless on a machine with a closed network: without the background-networking flags
#: Chromium keeps trying Google's hosts and its refused connections flood the log.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"
TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Console:
    url: str
    engine: Engine
    to_approve: str
    for_viewer: str
    corridor: str


def seed_lake(config: Settings) -> None:
    """Two quarter hours of gold's link state on every corridor edge (speeds from free flow to a
    jam, so every level of service shows) and one active incident."""
    edges = [
        f["properties"] for f in network_geojson(config)["features"] if f["properties"]["layer"] == "edges"
    ]
    for step, slot in enumerate((T0, T0 + timedelta(minutes=15))):
        rows = [
            link_row(
                edge["id"],
                slot,
                speed_mps=edge["speed_limit_mps"] * (0.15 + 0.85 * ((i * 7 + step * 3) % 10) / 9),
                flow_vph=300.0 + 40 * i,
                confidence=0.8,
            )
            for i, edge in enumerate(edges)
        ]
        write_partition(config.lake_path, "gold.link_state_15min", slot, rows)
    write_partition(config.lake_path, "silver.incidents", T0, [incident_row("inc-1", T0, T0)])


def apply_with_events_at_j4(config: Settings, engine: Engine, plan_id: str) -> None:
    """The plan applied at every signal at 08:00:20Z, and J4's controller log in the lake from
    06:45 to 09:30: before the plan one arrival in four on green, after it three in four."""
    store.mark_published(engine, plan_id)
    store.set_status(engine, plan_id, store.APPROVED, "olga")
    effective = datetime(2026, 11, 28, 8, 0, 20, tzinfo=UTC)
    for tls_id in sorted({record["tls_id"] for record in store.get(engine, plan_id).records}):
        applications.claim(engine, plan_id, tls_id, "sumo-twin", {"tls_id": tls_id})
        answer = {"cycle_s": 90, "application": {"transition_cycles": 1}}
        applications.settle(engine, plan_id, tls_id, "applied", "", answer, effective_at=effective)
        store.record_signal_outcome(engine, plan_id, tls_id, "applied", "field:sumo-twin")
    j4 = signal_config.configuration(config).signals["J4"]
    advance = next(d for d in j4.detectors if d.phase == 2 and d.kind == "advance")
    before = phase_2_log(datetime(2026, 11, 28, 6, 45, tzinfo=UTC), 75, (10, 31, 40, 50), advance)
    after = phase_2_log(datetime(2026, 11, 28, 8, 0, tzinfo=UTC), 90, (5, 10, 20, 31), advance)
    write_lake(config.lake_path, sorted(before + after), j4.controller_id)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console served by uvicorn in a thread, with people, two proposed plans and a lake."""
    root = tmp_path_factory.mktemp("browser")
    config = Settings(var_dir=root / "var", lake_uri=str(root / "lake"), lake_network="corridor")
    engine = database.open_database(config)
    add_people(engine)
    to_approve = stored_plan(engine)
    for_viewer = stored_plan(engine, green_s=20.0)
    corridor = corridor_plan(engine, config, offsets={"J3": 40.0, "J5": 80.0})
    apply_with_events_at_j4(config, engine, corridor)
    seed_lake(config)
    write_day(config.lake_path, DAY, NEWEST)
    with serving(create_app(config)) as url:
        yield Console(url, engine, to_approve, for_viewer, corridor)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright: a clear failure when it is missing.
    Module-scoped: Playwright's sync API keeps an event loop running in this thread until it
    stops, and later tests that run their own loop (the event-stream tests) must not meet it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"the browser test needs Debian's Chromium at {CHROMIUM}: run `make setup` as root, "
            "or `sudo apt-get install chromium chromium-driver`",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright: `make setup` installs it (dev extra)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


class Watched:
    """A page whose console errors and requests are recorded: every request must stay on the
    console's origin, and no page may log an error."""

    def __init__(self, browser, console: Console) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"))
        self.page.on("request", lambda r: r.url.startswith(console.url) or self.elsewhere.append(r.url))

    def log_in(self, console: Console, name: str, path: str = "/") -> None:
        self.page.goto(console.url + path)
        self.page.wait_for_url("**/login?next=*")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(console.url + path)

    def shot(self, directory: Path, name: str) -> None:
        path = directory / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0

    def close(self, allowed_errors: tuple[str, ...] = ()) -> None:
        self.context.close()
        errors = [e for e in self.errors if not any(allowed in e for allowed in allowed_errors)]
        assert errors == [], errors
        assert self.elsewhere == [], f"requests left the console: {self.elsewhere}"


def test_an_operator_sees_the_map_and_approves_a_plan(browser, console: Console, screenshots: Path):
    watched = Watched(browser, console)
    page = watched.page
    page.goto(console.url + "/plans")
    page.wait_for_url("**/login?next=%2Fplans")
    watched.shot(screenshots, "login")

    watched.log_in(console, "olga")
    page.wait_for_selector("body[data-edges]")
    assert int(page.get_attribute("body", "data-edges")) >= 60
    assert "corridor" in page.text_content("#network")
    assert "incident" in page.text_content("#summary") and "0 with a fused speed" not in page.text_content(
        "#summary"
    )
    assert page.locator("#slot").get_attribute("max") == "1", "two quarter hours on the slider"
    watched.shot(screenshots, "map")

    page.click("nav >> text=Recommendations")
    row = page.locator(f'tr[data-plan="{console.to_approve}"]')
    row.wait_for()
    assert row.locator(".state").text_content() == "proposed"
    assert "resco_delay" in row.text_content() and "1, 2, 3" in row.text_content()
    page.wait_for_selector("#live >> text=live updates: on")
    watched.shot(screenshots, "plans")

    row.locator("a").click()
    page.wait_for_selector("body[data-ready]")
    assert page.text_content("#state") == "proposed"
    assert "gold.turning_movements_15min version 3" in page.text_content("#evidence")
    assert page.locator("#kpis .main-svg").count() > 0, "the KPI chart is drawn by Plotly"
    charts = page.locator(".phase-chart")
    assert charts.count() == 1
    assert charts.locator("text=now (before)").count() == 1
    assert charts.locator("text=plan (after)").count() == 1
    watched.shot(screenshots, "plan")

    page.fill("#note", "checked in the twin")
    page.click("#approve")
    page.wait_for_selector("body[data-state=approved]")
    assert page.text_content("#state") == "approved"
    assert page.locator("#actions").is_hidden()
    assert "olga" in page.text_content("#events")
    watched.shot(screenshots, "plan-approved")

    page.click("nav >> text=Recommendations")
    page.locator(f'tr[data-plan="{console.to_approve}"] .state >> text=approved').wait_for()
    # a proposal stored while the page is open appears without a reload (server-sent events)
    page.wait_for_selector("#live >> text=live updates: on")
    live_plan = stored_plan(console.engine, green_s=25.0)
    page.locator(f'tr[data-plan="{live_plan}"]').wait_for()

    page.click("nav >> text=Audit log")
    page.wait_for_selector("body[data-entries]")
    assert page.locator("#audit td", has_text="plan.approve").count() == 1
    watched.shot(screenshots, "audit")
    watched.close()


def test_a_viewer_finds_no_approve_button_and_the_api_refuses(browser, console: Console, screenshots: Path):
    watched = Watched(browser, console)
    page = watched.page
    watched.log_in(console, "vera", f"/plans/{console.for_viewer}")
    page.wait_for_selector("body[data-ready]")
    assert page.text_content("#state") == "proposed"
    assert page.locator("#approve").is_hidden() and page.locator("#reject").is_hidden()
    assert page.locator("nav >> text=Audit log").count() == 0
    watched.shot(screenshots, "plan-viewer")
    status = page.evaluate(
        """async (id) => (await fetch(`/api/plans/${id}/approve`, {
            method: "POST",
            headers: {"X-CSRF-Token": sessionStorage.getItem("citybrain.csrf")},
        })).status""",
        console.for_viewer,
    )
    assert status == 403
    # the fetch's 403 is logged by the browser as a failed resource: the only error allowed
    watched.close(allowed_errors=("403",))


def test_a_corridor_plans_time_space_diagram_and_the_detector_health(
    browser, console: Console, screenshots: Path
):
    watched = Watched(browser, console)
    page = watched.page
    watched.log_in(console, "vera", f"/plans/{console.corridor}")
    page.wait_for_selector("body[data-ready]")
    before, after = page.locator("#time-space-before"), page.locator("#time-space-after")
    assert before.is_visible() and after.is_visible()
    assert after.locator(".main-svg").count() > 0, "the diagram is drawn by Plotly"
    assert after.locator("text=J7").count() > 0, "the route's last signal is labelled"
    page.locator("#time-space-after").scroll_into_view_if_needed()
    watched.shot(screenshots, "plan-time-space")
    # applied: J4's measures before and after from its event log, and its coordination diagrams
    measured = page.locator('#signal-measures div[data-signal="J4"]')
    measured.locator(".pcd-chart .main-svg").nth(1).wait_for()
    assert "Arrivals on green (%)" in measured.locator("table.measures").text_content()
    assert "25.0" in measured.text_content() and "75.0" in measured.text_content()
    assert page.locator('#signal-measures div[data-signal="J3"]').text_content().count("Not measured") == 1
    measured.scroll_into_view_if_needed()
    watched.shot(screenshots, "plan-signal-measures")

    page.click("nav >> text=Detector health")
    page.wait_for_selector("body[data-ready]")
    assert page.get_attribute("body", "data-detectors") == str(len(NEWEST))
    rows = page.locator("#detectors tbody tr")
    assert [rows.nth(i).get_attribute("data-detector") for i in range(rows.count())][:2] == ["D4", "D3"]
    assert page.locator("#chart .main-svg").count() > 0
    watched.shot(screenshots, "detectors")
    watched.close()
