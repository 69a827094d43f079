"""Answers kept per state of their data: ETags and 304, gzip, and a change seen at once."""

from __future__ import annotations

import gzip

import pytest

from console.answers import Document
from optimizer.proposing import store
from tests.unit.console.plans_and_users import logged_in, stored_plan


def test_a_document_has_a_content_etag_and_gzips_only_what_is_worth_it():
    long = Document.of(b"[" + b'"x",' * 500 + b'"x"]')
    assert gzip.decompress(long.gzipped) == long.body and len(long.gzipped) < len(long.body) / 10
    assert Document.of(long.body).etag == long.etag != Document.of(b"[]").etag
    assert Document.of(b"[]").gzipped is None


def test_the_plan_list_answers_304_while_nothing_changed(app, engine):
    stored_plan(engine)
    browser, _ = logged_in(app, "vera")
    first = browser.get("/api/plans")
    etag = first.headers["etag"]
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    again = browser.get("/api/plans", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert browser.get("/api/plans", headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert browser.get("/api/plans", headers={"If-None-Match": "*"}).status_code == 304
    # another query is another answer
    assert browser.get("/api/plans?state=rejected", headers={"If-None-Match": etag}).status_code == 200


def test_a_change_made_outside_the_console_shows_at_once(app, engine):
    plan_id = stored_plan(engine)
    browser, _ = logged_in(app, "vera")
    before = browser.get("/api/plans")
    store.set_status(engine, plan_id, store.REJECTED, "another process")
    after = browser.get("/api/plans", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.json()[0]["state"] == "rejected"
    second = stored_plan(engine, green_s=25.0)
    assert [p["plan_id"] for p in browser.get("/api/plans").json()].count(second) == 1


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip, deflate", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
    ],
)
def test_gzip_when_the_client_accepts_it(app, engine, accept, gzipped):
    for green_s in (20.0, 21.0, 22.0, 23.0):  # a list long enough to be worth compressing
        stored_plan(engine, green_s=green_s)
    browser, _ = logged_in(app, "vera")
    answer = browser.get("/api/plans", headers={"Accept-Encoding": accept})
    assert answer.status_code == 200 and answer.json()
    assert (answer.headers.get("content-encoding") == "gzip") is gzipped
    assert answer.headers["vary"] == "Accept-Encoding"
