"""The console's HTTP API: plans to judge, approvals and rejections, the audit log, the map.

Security, in the order a request meets it: bodies over ``console_max_body_bytes`` are refused
(413) before they are read; a route that needs a login answers 401 without a live session
cookie; every state-changing request but the login needs the session's CSRF token in
``X-CSRF-Token`` (403); approving, rejecting and reading the audit log need an operator or
admin (403). Logins are limited per account and per address by the failures the audit log
holds (429). The OpenAPI schema is at ``/openapi.json``; the interactive docs are off, since
they load their scripts from a CDN and the console works offline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console import (
    answers,
    approval,
    audit,
    detector_health,
    events,
    network_layers,
    pages,
    sessions,
    signal_measures,
    time_space,
    users,
)
from core import database
from core.errors import CitybrainError
from core.settings import Settings
from lake.measure_plots import MeasureError
from optimizer.plans.safety import UnsafePlan
from optimizer.proposing import store
from schemas import contract

SESSION_COOKIE = "citybrain_session"
CSRF_HEADER = "X-CSRF-Token"
#: Longest reason or comment an operator may give: a sentence or two, not a document.
NOTE_MAX_CHARS = 1000
PAGE_MAX = 1000
#: The largest integer both SQLite and PostgreSQL (bigint) hold.
MAX_ID = 2**63 - 1

PlanState = Literal[
    "proposed", "approved", "rejected", "applied", "refused", "failed", "superseded", "rolled_back"
]
# PostgreSQL text cannot hold NUL: refused at the door (422) rather than failing in the database (500)
NO_NUL = r"^[^\x00]*$"
PlanId = Annotated[str, Path(max_length=128, pattern=NO_NUL)]
#: The years the lake's events may lie in (what pandas' timestamps hold, with room).
PCD_YEARS = (1970, 2200)
#: A signal as its event log names it: the contract's identifier.
SignalId = Annotated[
    str, Path(pattern=contract("traffic.signal_event.v1").schema["properties"]["signal_id"]["pattern"])
]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413): by their declared length before reading,
    and while reading when no length was declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


def _too_large(max_bytes: int) -> ASGIApp:
    return JSONResponse({"detail": f"request body over {max_bytes} bytes"}, status_code=413)


class NoStore:
    """API answers hold sessions' data: no cache keeps them, no browser guesses their type. An
    answer that sets its own header keeps it (the libraries the pages load are cached)."""

    HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [(k, v) for k, v in self.HEADERS if k not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- bodies and answers -------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=users.MAX_PASSWORD_CHARS)


class ApproveIn(Strict):
    comment: str = Field("", max_length=NOTE_MAX_CHARS, pattern=NO_NUL)


class RejectIn(Strict):
    reason: str = Field(min_length=1, max_length=NOTE_MAX_CHARS, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")


class UserOut(BaseModel):
    name: str
    role: str


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description=f"Send it back in the {CSRF_HEADER} header of every POST.")
    expires_at: datetime


class ProgramOut(BaseModel):
    tls_id: str = Field(description="The signal's contract id, as the plan's records name it.")
    cycle_s: float
    offset_s: float
    phases: list[dict[str, Any]]


class ProgramsOut(BaseModel):
    scenario: str | None
    programs: dict[str, ProgramOut | None] = Field(
        description="Per signal of the plan, the program its scenario's network runs now (null: none)."
    )
    error: str | None = Field(None, description="Why the network's programs cannot be read, if so.")


class Health(BaseModel):
    status: Literal["ok"]
    schema_revision: str | None


class PlanEventOut(BaseModel):
    at: datetime
    state: str
    actor: str
    note: str


class PlanSummary(BaseModel):
    plan_id: str
    method: str
    scenario: str | None
    state: PlanState
    signals: list[str]
    created_at: datetime
    valid_from: datetime
    valid_to: datetime
    published_at: datetime | None
    evaluation: dict[str, Any]


#: Validates and serialises the plan list as FastAPI's response model would (the cached answer is
#: the same JSON the route gave before it was cached).
PLAN_LIST = TypeAdapter(list[PlanSummary])


class PlanDetail(PlanSummary):
    records: list[dict[str, Any]]
    publish_error: str | None
    events: list[PlanEventOut]
    approval_publish: Literal["published", "pending"] | None = Field(
        None,
        description="Whether the approval reached control.plan.approved.v1, or waits for the broker "
        "(it stands either way); null when not approved.",
    )
    approval_published_at: datetime | None = None
    approval_publish_error: str | None = None
    signal_outcomes: dict[str, str] | None = Field(
        None, description="Each signal's outcome in the field (applied, refused, failed, rolled_back)."
    )


class RollbackOut(BaseModel):
    plan_id: str
    requested_by: str
    ts: str
    reason: str


class AuditOut(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    address: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


def _summary(plan: store.StoredPlan) -> dict[str, Any]:
    return {
        "plan_id": plan.plan_id,
        "method": plan.method,
        "scenario": plan.scenario,
        "state": plan.status,
        "signals": [record["tls_id"] for record in plan.records],
        "created_at": plan.created_at,
        "valid_from": plan.valid_from,
        "valid_to": plan.valid_to,
        "published_at": plan.published_at,
        "evaluation": plan.evaluation,
    }


#: The plan store's columns a plan's summary shows (not its approval records, say).
SUMMARY_COLUMNS = (
    "plan_id", "method", "scenario", "status", "records", "created_at", "valid_from", "valid_to",
    "published_at", "evaluation",
)  # fmt: skip


def _listed(
    engine: Engine, state: str | None, signal: str | None, scenario: str | None, limit: int
) -> list[dict[str, Any]]:
    """The summaries ``GET /api/plans`` answers, in :func:`store.list_plans`'s order. State and
    scenario are filtered in SQL and rows are decoded only until ``limit`` are found: decoding
    every stored plan's records and evaluation (JSON) was most of the route's time (300 plans:
    50 ms a request, against 8 ms for the 100 a page holds)."""
    plans = store.plans
    query = select(*(plans.c[name] for name in SUMMARY_COLUMNS)).order_by(
        plans.c.created_at.desc(), plans.c.plan_id
    )
    if state is not None:
        query = query.where(plans.c.status == state)
    if scenario is not None:
        query = query.where(plans.c.scenario == scenario)
    if signal is None:
        query = query.limit(limit)
    found: list[dict[str, Any]] = []
    with database.ready(engine).connect() as connection:
        for row in connection.execute(query):
            signals = [record["tls_id"] for record in row.records]
            if signal is not None and signal not in signals:
                continue
            found.append(
                {
                    "plan_id": row.plan_id,
                    "method": row.method,
                    "scenario": row.scenario,
                    "state": row.status,
                    "signals": signals,
                    "created_at": row.created_at,
                    "valid_from": row.valid_from,
                    "valid_to": row.valid_to,
                    "published_at": row.published_at,
                    "evaluation": row.evaluation,
                }
            )
            if len(found) == limit:
                break
    return found


def _detail(plan: store.StoredPlan) -> PlanDetail:
    events = [PlanEventOut(at=e.at, state=e.status, actor=e.actor, note=e.note) for e in plan.events]
    approval_publish = None
    if plan.approval_records is not None:
        approval_publish = "pending" if plan.approval_pending else "published"
    return PlanDetail(
        **_summary(plan),
        records=plan.records,
        publish_error=plan.publish_error,
        events=events,
        approval_publish=approval_publish,
        approval_published_at=plan.approval_published_at,
        approval_publish_error=plan.approval_publish_error,
        signal_outcomes=plan.signal_outcomes,
    )


# -- the application ----------------------------------------------------------------------------


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _session(request: Request) -> sessions.Session:
    found = sessions.find(request.app.state.engine, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise HTTPException(401, "not logged in, or the session ended")
    return found


def _changing(request: Request, current: Annotated[sessions.Session, Depends(_session)]) -> sessions.Session:
    if not current.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
    return current


def _deciding(current: sessions.Session) -> sessions.Session:
    if not current.user.decides:
        raise HTTPException(403, f"a {current.user.role} may not do this; operators and admins may")
    return current


def _decider_changing(current: Annotated[sessions.Session, Depends(_changing)]) -> sessions.Session:
    return _deciding(current)


def _decider_reading(current: Annotated[sessions.Session, Depends(_session)]) -> sessions.Session:
    return _deciding(current)


#: A logged-in user; one sending a state-changing request with its CSRF token; an operator or
#: admin doing so; an operator or admin reading.
Reader = Annotated[sessions.Session, Depends(_session)]
Changer = Annotated[sessions.Session, Depends(_changing)]
Decider = Annotated[sessions.Session, Depends(_decider_changing)]
AuditReader = Annotated[sessions.Session, Depends(_decider_reading)]


def from_environment() -> FastAPI:
    """The application on the settings of the environment: what each of ``citybrain console
    --workers N``'s processes builds."""
    return create_app(Settings())


def create_app(settings: Settings) -> FastAPI:
    """The console's application on the project database of ``settings``."""
    engine: Engine = database.open_database(settings)
    app = FastAPI(
        title="citybrain console",
        summary="Proposed signal plans for an operator to approve or reject, with an audit log.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.add_middleware(NoStore)
    app.add_middleware(BodyLimit, max_bytes=settings.console_max_body_bytes)
    # Approvals (and proposals) a broker outage left queued are sent when the console starts.
    app.router.on_startup.append(lambda: approval.publish_pending_soon(settings, engine))

    @app.get("/api/health", response_model=Health)
    def health() -> Health:
        """Whether the console and its database answer."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                revision = database.revision(connection)
        except SQLAlchemyError as exc:
            raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from None
        return Health(status="ok", schema_revision=revision)

    @app.post(
        "/api/login",
        response_model=LoginOut,
        responses={401: {"description": "Wrong name or password"}, 429: {"description": "Too many failures"}},
    )
    def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
        """Start a session: sets the session cookie and returns the CSRF token."""
        address = _address(request)
        since = datetime.now(UTC) - timedelta(seconds=settings.console_login_window_s)
        failures = audit.failures_since(engine, since, name=body.name, address=address)
        if max(failures) >= settings.console_login_max_failures:
            audit.write(engine, "anonymous", audit.LOGIN_THROTTLED, body.name, address=address)
            raise HTTPException(
                429,
                "too many failed logins for this account or address; try again later",
                headers={"Retry-After": str(settings.console_login_window_s)},
            )
        user = users.verify(engine, body.name, body.password)
        if user is None:
            audit.write(engine, "anonymous", audit.LOGIN_FAILED, body.name, address=address)
            raise HTTPException(401, "wrong name or password, or the user is disabled")
        opened = sessions.open_session(engine, user, settings.console_session_lifetime_s, address)
        response.set_cookie(
            SESSION_COOKIE,
            opened.token,
            max_age=settings.console_session_lifetime_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return LoginOut(
            user=UserOut(name=user.name, role=user.role),
            csrf_token=opened.csrf_token,
            expires_at=opened.expires_at,
        )

    @app.post("/api/logout", status_code=204)
    def logout(request: Request, current: Changer) -> Response:
        """End the session."""
        sessions.close(engine, current, _address(request))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/api/me", response_model=UserOut)
    def me(current: Reader) -> UserOut:
        """Who is logged in, and with which role (the pages show what the role may do)."""
        return UserOut(name=current.user.name, role=current.user.role)

    @functools.lru_cache(maxsize=64)
    def plan_list(version: int, *query: Any) -> answers.Document:
        """The plan list's answer while the plan trail's newest line is ``version``: every
        change a summary shows (proposed, decided, published, superseded) adds a line."""
        return answers.Document.of(PLAN_LIST.dump_json(PLAN_LIST.validate_python(_listed(engine, *query))))

    @app.get("/api/plans", response_model=list[PlanSummary])
    def plans(
        _: Reader,
        request: Request,
        state: PlanState | None = None,
        signal: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
        scenario: Annotated[str | None, Query(max_length=256, pattern=NO_NUL)] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    ) -> Response:
        """Stored plans, newest first, optionally of one state, signal (tls id) or scenario."""
        document = plan_list(events.last_event_id(engine), state, signal, scenario, limit)
        return answers.respond(request, document)

    def _plan(plan_id: str) -> store.StoredPlan:
        try:
            return store.get(engine, plan_id)
        except store.PlanNotFound as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get(
        "/api/plans/{plan_id}", response_model=PlanDetail, responses={404: {"description": "No such plan"}}
    )
    def plan(plan_id: PlanId, _: Reader) -> PlanDetail:
        """One plan with its records (as published) and its lifecycle trail."""
        return _detail(_plan(plan_id))

    @app.get(
        "/api/plans/{plan_id}/programs",
        response_model=ProgramsOut,
        responses={404: {"description": "No such plan"}},
    )
    def current_programs(plan_id: PlanId, _: Reader) -> ProgramsOut:
        """The programs the plan's signals run now on its scenario's network: the "before" of the
        plan's phase sequences (read-only)."""
        plan = _plan(plan_id)
        found = approval.current_programs(settings, plan)
        return ProgramsOut(
            scenario=plan.scenario,
            programs={
                tls_id: None if program is None else ProgramOut(tls_id=tls_id, **program)
                for tls_id, program in found.programs.items()
            },
            error=found.error,
        )

    @app.get(
        "/api/plans/{plan_id}/time-space",
        response_model=time_space.TimeSpaceOut,
        responses={404: {"description": "No such plan"}},
    )
    def plan_time_space(plan_id: PlanId, _: Reader) -> time_space.TimeSpaceOut:
        """The plan's time-space diagram: the route through its signals on its scenario's network,
        each signal's greens along it now (before) and in the plan (after), and the through
        bands at the progression speed; a reason instead where there is no route."""
        return time_space.diagram(settings, _plan(plan_id))

    @app.get(
        "/api/plans/{plan_id}/signal-measures",
        response_model=signal_measures.PlanMeasuresOut,
        responses={404: {"description": "No such plan"}},
    )
    def plan_signal_measures(plan_id: PlanId, _: Reader) -> signal_measures.PlanMeasuresOut:
        """Each signal the plan was applied to, measured from its controller's event log in the
        hour before the plan took effect and the hour after its transition: arrivals on green,
        split failures, delay per vehicle and the rest per phase, with the change; a reason per
        signal where there is none (not applied, no events in the lake)."""
        return signal_measures.for_plan(settings, engine, _plan(plan_id))

    @app.get(
        "/api/signals/{signal_id}/pcd",
        response_model=signal_measures.PcdOut,
        responses={404: {"description": "No such signal or phase, or no events in the period"}},
    )
    def signal_pcd(
        signal_id: SignalId,
        start: datetime,
        _: Reader,
        minutes: Annotated[
            int, Query(ge=1, le=1440, description="How long from start (at most a day).")
        ] = 60,
        phase: Annotated[int | None, Query(ge=1, le=40)] = None,
    ) -> signal_measures.PcdOut:
        """A signal's Purdue Coordination Diagram over ``minutes`` from ``start`` (UTC when it names
        no zone) from its event log in the lake: per phase the cycles' green and yellow bands and
        every arrival's time in cycle, as data for a chart."""
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        if not PCD_YEARS[0] <= start.year < PCD_YEARS[1]:
            raise HTTPException(404, f"the lake holds no events outside {PCD_YEARS[0]}-{PCD_YEARS[1] - 1}")
        try:
            return signal_measures.pcd(settings, signal_id, start, start + timedelta(minutes=minutes), phase)
        except MeasureError as exc:
            raise HTTPException(404, str(exc)) from None

    def _decide(action: Callable[[], store.StoredPlan]) -> PlanDetail:
        try:
            return _detail(action())
        except store.PlanNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except store.TransitionRefused as exc:
            raise HTTPException(409, str(exc)) from None
        except UnsafePlan as exc:
            detail = {"message": str(exc), "violations": [v.to_dict() for v in exc.violations]}
            raise HTTPException(409, detail) from None
        except approval.CannotRecheck as exc:
            raise HTTPException(409, f"not approved: the safety re-check cannot run: {exc}") from None

    decisions = {
        403: {"description": "No CSRF token, or not an operator"},
        404: {"description": "No such plan"},
        409: {"description": "Not proposed, or unsafe"},
    }

    @app.post("/api/plans/{plan_id}/approve", response_model=PlanDetail, responses=decisions)
    def approve(
        plan_id: PlanId, request: Request, current: Decider, body: ApproveIn | None = None
    ) -> PlanDetail:
        """Approve a proposed plan after re-checking its safety rules on its scenario's network."""
        comment = body.comment if body is not None else ""
        return _decide(
            lambda: approval.approve(settings, engine, plan_id, current.user, comment, _address(request))
        )

    @app.post("/api/plans/{plan_id}/reject", response_model=PlanDetail, responses=decisions)
    def reject(plan_id: PlanId, body: RejectIn, request: Request, current: Decider) -> PlanDetail:
        """Reject a proposed plan, saying why."""
        return _decide(lambda: approval.reject(engine, plan_id, current.user, body.reason, _address(request)))

    @app.post(
        "/api/plans/{plan_id}/rollback",
        response_model=RollbackOut,
        responses={
            **decisions,
            409: {"description": "Not applied"},
            503: {"description": "Kafka did not take it"},
        },
    )
    def rollback(plan_id: PlanId, body: RejectIn, request: Request, current: Decider) -> dict[str, Any]:
        """Ask the field to restore the timing an applied plan replaced, saying why; the plan
        becomes rolled_back when the field answers on control.plan.applied.v1."""
        try:
            return approval.roll_back(settings, engine, plan_id, current.user, body.reason, _address(request))
        except store.PlanNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except store.TransitionRefused as exc:
            raise HTTPException(409, str(exc)) from None
        except approval.NotSent as exc:
            raise HTTPException(503, str(exc)) from None

    @app.get("/api/audit", response_model=list[AuditOut], responses={403: {"description": "Not an operator"}})
    def audit_log(
        _: AuditReader,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_ID, description="Entries older than this audit_id.")
        ] = None,
        action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
        actor: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    ) -> list[audit.Entry]:
        """The audit log, newest first (read-only: nothing in the API changes it)."""
        return audit.entries(engine, limit=limit, before=before, action=action, actor=actor)

    @app.get(
        "/api/detectors",
        response_model=detector_health.DetectorHealth,
        responses={422: {"description": "A day not written YYYY-MM-DD, or an unknown status"}},
    )
    def detectors(
        _: Reader,
        day: Annotated[
            str | None,
            # the pattern and format tell clients (and schemathesis) what a day is; parse_day
            # still refuses a day the calendar lacks, such as 2026-02-30
            Query(
                max_length=10,
                pattern=r"^\d{4}-\d{2}-\d{2}$",
                json_schema_extra={"format": "date"},
                description="The UTC day, YYYY-MM-DD; default: the newest.",
            ),
        ] = None,
        status: Annotated[
            Literal["down", "degraded", "ok"] | None, Query(description="Only detectors with this status.")
        ] = None,
    ) -> detector_health.DetectorHealth:
        """Detector health of one day from the lake, worst first, with the count of each status."""
        try:
            asked = None if day is None else detector_health.parse_day(day)
        except detector_health.BadDay as exc:
            raise HTTPException(422, str(exc)) from None
        return detector_health.read(settings, asked, status)

    @app.get(
        "/api/events",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "`plan` events, heartbeats"},
            401: {"description": "No session"},
        },
    )
    def plan_updates(request: Request, current: Reader) -> StreamingResponse:
        """Server-sent events: `plan` whenever a plan is proposed, approved, rejected or published;
        a heartbeat every 15 s; `end` and close at logout or session expiry."""
        after = events.resume_from(request.headers.get("last-event-id"))
        chunks = events.stream(
            engine,
            request.cookies.get(SESSION_COOKIE),
            # read before the answer starts: a change made once the client has the 200 is sent
            after=events.last_event_id(engine) if after is None else after,
            disconnected=request.is_disconnected,
        )
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    @app.get("/api/network", responses={503: {"description": "The network or lake cannot be read"}})
    def network(_: Reader, request: Request, at: datetime | None = None) -> Response:
        """The map's layers as GeoJSON: edges with their latest state, signals with their approach
        delay, incidents."""
        try:
            return answers.respond(request, network_layers.network_document(settings, at=at))
        except CitybrainError as exc:
            raise HTTPException(503, str(exc)) from None

    pages.add_pages(app, SESSION_COOKIE)
    return app
