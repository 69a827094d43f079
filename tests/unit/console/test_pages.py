"""The pages' server side: login redirects, the offline headers, the vendor files by explicit
path only, and the two read-only routes the pages use (who am I, a plan's "before" programs)."""

from __future__ import annotations

import re

import pytest

from console import pages
from tests.unit.console.plans_and_users import client, logged_in, stored_plan


@pytest.mark.parametrize("path", ["/", "/plans", "/plans/p-1", "/audit?limit=5"])
def test_a_page_without_a_session_redirects_to_the_login(app, path):
    answer = client(app).get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=%2F")
    assert client(app).get("/login").status_code == 200


@pytest.mark.parametrize("path", ["/", "/plans", "/plans/p-1", "/audit", "/login"])
def test_pages_load_only_from_the_console(app, path):
    browser, _ = logged_in(app, "vera")
    answer = browser.get(path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    # every script and style the page names is the console's own, and each is served
    for url in re.findall(r'(?:src|href)="([^"]+)"', answer.text):
        if url.startswith("data:"):
            continue
        assert url.startswith("/static/"), url
        assert browser.get(url).status_code == 200, url


def test_vendor_files_only_by_their_listed_names(app):
    browser = client(app)
    for name in pages.VENDOR:
        answer = browser.get(f"/static/vendor/{name}")
        assert answer.status_code == 200 and answer.headers["cache-control"] == pages.STATIC_CACHE
    assert browser.get("/static/vendor/package.json").status_code == 404
    assert browser.get("/static/vendor/..%2Fnode_modules%2Fleaflet%2Fpackage.json").status_code == 404


def test_who_am_i(app):
    assert client(app).get("/api/me").status_code == 401
    browser, _ = logged_in(app, "olga")
    assert browser.get("/api/me").json() == {"name": "olga", "role": "operator"}


def test_a_plans_before_is_its_scenarios_current_program(app, engine):
    plan_id = stored_plan(engine, green_s=20.0)
    browser, _ = logged_in(app, "vera")
    answer = browser.get(f"/api/plans/{plan_id}/programs")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["scenario"] == "resco/cologne1" and found["error"] is None
    ((tls_id, program),) = found["programs"].items()
    after = browser.get(f"/api/plans/{plan_id}").json()["records"][0]
    assert tls_id == after["tls_id"]
    assert program["phases"][0]["duration_s"] != 20.0 == after["phases"][0]["duration_s"]
    assert program["phases"][1:] == after["phases"][1:]
    assert browser.get("/api/plans/nope/programs").status_code == 404


def test_a_plan_without_a_scenario_says_why_there_is_no_before(app, engine):
    plan_id = stored_plan(engine, scenario="no/such-scenario")
    browser, _ = logged_in(app, "vera")
    found = browser.get(f"/api/plans/{plan_id}/programs").json()
    assert found["error"] and list(found["programs"].values()) == [None]
