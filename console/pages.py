"""The console's pages: plain HTML and small JavaScript modules on the JSON API, served offline.

Our own pages, scripts and styles live in ``console/web/pages`` and ``console/web/static``; the
libraries they use (Leaflet for the map, Plotly for the charts) are installed from the npm
registry by ``make setup`` (``npm ci`` in ``console/web``) and served from its ``node_modules`` by
the explicit paths of :data:`VENDOR` only. Nothing is fetched from outside: no CDN, no map tiles
(the network is drawn on a blank background), and the pages' Content-Security-Policy lets them
load and connect to this origin alone.

A page needs a login: without a live session it redirects to ``/login?next=<page>``. What a
user may do is still decided by the API (a viewer's page shows no approve button, and the API
refuses a viewer's approval anyway).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from console import sessions

WEB_DIR = Path(__file__).parent / "web"
PAGES_DIR = WEB_DIR / "pages"
STATIC_DIR = WEB_DIR / "static"
NODE_MODULES = WEB_DIR / "node_modules"
#: The library files the pages load, by the name they are served under ``/static/vendor/``.
VENDOR = {
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "plotly.min.js": "plotly.js-dist-min/plotly.min.js",
}
#: Only this origin: scripts, styles, images and connections. Plotly and Leaflet set inline styles
#: on the elements they draw, hence ``'unsafe-inline'`` for styles (never for scripts).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: Library and own files change only with a release or ``make setup``: cache them a while.
STATIC_CACHE = "public, max-age=3600"


def add_pages(app: FastAPI, cookie: str) -> None:
    """The pages, our static files and the vendor libraries, on ``app``; ``cookie``: the session's."""

    def page(name: str, request: Request) -> Response:
        if sessions.find(request.app.state.engine, request.cookies.get(cookie)) is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return _html(name)

    @app.get("/login", include_in_schema=False)
    def login_page() -> Response:
        return _html("login.html")

    @app.get("/", include_in_schema=False)
    def map_page(request: Request) -> Response:
        return page("map.html", request)

    @app.get("/plans", include_in_schema=False)
    def plans_page(request: Request) -> Response:
        return page("plans.html", request)

    @app.get("/plans/{plan_id}", include_in_schema=False)
    def plan_page(plan_id: str, request: Request) -> Response:
        return page("plan.html", request)

    @app.get("/audit", include_in_schema=False)
    def audit_page(request: Request) -> Response:
        return page("audit.html", request)

    @app.get("/detectors", include_in_schema=False)
    def detectors_page(request: Request) -> Response:
        return page("detectors.html", request)

    @app.get("/static/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> Response:
        if name not in VENDOR:
            raise HTTPException(404, f"no library file {name!r}")
        path = NODE_MODULES / VENDOR[name]
        if not path.is_file():
            raise HTTPException(
                503, f"{path} is missing: the console's libraries are installed by `make setup` (npm ci)"
            )
        return FileResponse(path, headers={"Cache-Control": STATIC_CACHE})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _html(name: str) -> Response:
    return FileResponse(
        PAGES_DIR / name,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )
