"""The review app's pages. Handlers are thin: queries in ``queries``/``kpis``, redaction in ``pages``.

Sync handlers run in Starlette's thread pool, so SQLite and argon2 never block the event loop.
"""

from __future__ import annotations

import math
import secrets
from datetime import date, datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from voicebot.review import charts
from voicebot.review.analysis import FLAGS, TOPICS, load_analysis
from voicebot.review.dropoff import compute_dropoff
from voicebot.review.kpis import compare, compute_dashboard, previous_period
from voicebot.review.annotations import AnnotationError, annotations_of, parse_tags
from voicebot.review.outbound import RESULTS, outbound_calls
from voicebot.review.pages import build_call_page, crm_customer, list_row
from voicebot.outcomes import DEFINITIONS, decide_stored
from voicebot.review.queries import (DIRECTIONS, CallRow, REVIEWED_CHOICES, SENTIMENTS, TEST_CHOICES, ListFilter, list_calls,
                                    transfer_reasons)
from voicebot.review.recordings import RecordingWithheld, playable_file, secret_spans
from voicebot.review.redact import redact_text
from voicebot.review.security import LOGIN_COOKIE, SESSION_COOKIE, safe_next, set_login_cookie, set_session_cookie
from voicebot.review.state import ReviewState, render
from voicebot.review.unanswered import entry_titles
from voicebot.review.users import LoginThrottled
from voicebot.store import RECORDINGS, Outcome, StoreError

DASHBOARD_DAYS = (7, 14, 30, 90)
DROP_CHART = {"width": 520, "label_w": 250}  # the drop-off's labels are phrases ("spoke, hung up before the reply")


def _state(request: Request) -> ReviewState:
    return request.app.state.review


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# -- login --------------------------------------------------------------------------------------------------------

def login_page(request: Request) -> Response:
    if request.state.user is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), 303)
    state = _state(request)
    # reuse the cookie's token: two login pages open at once (or a second tab) must not void each other's form
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", {"next": safe_next(request.query_params.get("next")),
                                              "error": None, "username": "", "login_csrf": token})
    set_login_cookie(response, state, token)
    return response


async def login_submit(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    target = safe_next(str(form.get("next", "")))
    try:
        user = await run_in_threadpool(state.users.authenticate, username, password, _client(request))
    except LoginThrottled as exc:
        token = secrets.token_urlsafe(24)
        wait = max(1, math.ceil(exc.retry_after_s))
        response = render(request, "login.html", {"next": target, "username": username, "login_csrf": token,
                                                  "error": f"Too many attempts: wait {wait} s and try again."}, 429)
        response.headers["Retry-After"] = str(wait)
        set_login_cookie(response, state, token)
        return response
    if user is None:
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", {"next": target, "username": username, "login_csrf": token,
                                                  "error": "Wrong user name or password."}, 401)
        set_login_cookie(response, state, token)
        return response
    token, _ = await run_in_threadpool(state.users.start_session, user)
    response = RedirectResponse(target, 303)
    set_session_cookie(response, state, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def logout(request: Request) -> Response:
    state = _state(request)
    state.users.log(request.state.user, "logout", client=_client(request))
    state.users.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- calls --------------------------------------------------------------------------------------------------------

def call_list(request: Request) -> Response:
    state = _state(request)
    role = request.state.user.role
    notes = annotations_of(state)
    filters, problems = ListFilter.parse(request.query_params)
    page = list_calls(state.store, filters, state.tz, state.config.review.page_size, role, notes, state.crm_path)
    ids = [r.call.id for r in page.rows]
    marks, outbound = notes.many(ids), outbound_calls(state.crm_path, ids, role)
    rows = [list_row(r, role, marks.get(r.call.id), outbound.get(r.call.id)) for r in page.rows]
    return render(request, "calls.html", {
        "nav": "calls", "filters": filters, "problems": problems, "page": page, "rows": rows,
        "outcomes": [o.value for o in Outcome], "reasons": transfer_reasons(state.store), "topics": TOPICS,
        "sentiments": SENTIMENTS, "flags": FLAGS, "test_choices": TEST_CHOICES, "tags": notes.all_tags(),
        "reviewed_choices": REVIEWED_CHOICES, "directions": DIRECTIONS, "results": RESULTS})


def _get_call(state: ReviewState, call_id: str):
    try:
        return state.store.get_call(call_id)
    except StoreError:
        raise HTTPException(404, f"There is no call {call_id!r}.") from None


def call_page(request: Request) -> Response:
    state = _state(request)
    user = request.state.user
    call = _get_call(state, request.path_params["call_id"])
    turns = state.store.turns(call.id)
    available = [w for w in RECORDINGS if (p := state.store.recording_file(call, w)) is not None and p.is_file()]
    recording_note = None
    if available and not user.is_admin:
        try:
            if secret_spans(turns):
                recording_note = "Card numbers and PINs are replaced by a tone in this recording."
        except RecordingWithheld:
            available, recording_note = [], "The recording is withheld: it holds a card number or PIN at an unknown time."
    page = build_call_page(call, turns, state.store.events(call.id), load_analysis(state.store, call.id), available,
                           crm_customer(state.crm_path, call.customer_id, user.role), user.role,
                           entry_titles(state), turn_recorded(state, call.id))
    state.users.log(user, "view_call", call_id=call.id, client=_client(request))
    decided = decide_stored(state.store, [{"id": call.id, "outcome": call.outcome.value}])[call.id]
    note = annotations_of(state).get(call.id)
    outbound = outbound_calls(state.crm_path, [call.id], user.role).get(call.id)
    length = (call.ended_at - call.started_at).total_seconds() if call.ended_at else 0.0
    points = [(p.at or 0.0, p.score, f"turn {p.turn}") for p in (page.analysis.sentiment if page.analysis else ())]
    return render(request, "call.html", {
        "nav": "calls", "p": page, "recording_note": recording_note, "back": request.query_params.get("back", ""),
        "note": note, "note_text": redact_text(note.note, user.role), "outbound": outbound, "results": RESULTS,
        "row": list_row(CallRow(call), user.role, note, outbound),
        "saved": request.query_params.get("saved") == "1",
        "evidence": decided if decided.outcome != call.outcome else None,
        "sentiment_svg": charts.sentiment_line(points, length, width=360, height=120)})


def turn_recorded(state: ReviewState, call_id: str) -> list[datetime | None]:
    """When each turn was written, in turn order (``Turn`` does not carry it): places events on the call page."""
    rows = state.store.select("SELECT recorded_at FROM turns WHERE call_id = ? ORDER BY idx", (call_id,))
    return [datetime.fromisoformat(r["recorded_at"]) if r["recorded_at"] else None for r in rows]


def recording(request: Request) -> Response:
    state = _state(request)
    user = request.state.user
    which = request.path_params["which"].removesuffix(".wav")
    if which not in RECORDINGS:
        raise HTTPException(404, f"No recording named {which!r}.")
    call = _get_call(state, request.path_params["call_id"])
    path = state.store.recording_file(call, which)
    if path is None or not path.is_file():
        raise HTTPException(404, f"Call {call.id} has no {which} recording.")
    try:
        playable = playable_file(path, state.store.turns(call.id), user.role, state.cache_dir)
    except RecordingWithheld as exc:
        raise HTTPException(403, f"This recording is withheld from supervisors: {exc}.") from None
    return FileResponse(playable, media_type="audio/wav")  # loading is no listening: see ``recording_played``


async def recording_played(request: Request) -> Response:
    """POST from the call page's player when someone presses play (app.js): the access log's "play_recording"
    line. Loading the page, or the browser fetching the audio's metadata, logs nothing."""
    state = _state(request)
    user = request.state.user
    form = await request.form()
    which = str(form.get("which", ""))
    if which not in RECORDINGS:
        raise HTTPException(404, f"No recording named {which!r}.")
    call = await run_in_threadpool(_get_call, state, request.path_params["call_id"])
    await run_in_threadpool(state.users.log, user, "play_recording", call_id=call.id, detail=which,
                            client=_client(request))
    return Response(status_code=204)


async def annotate(request: Request) -> Response:
    """POST from the call page's "Review" form (CSRF checked by the middleware): tags, note and the reviewed
    mark; the access log records what changed (tags and the mark, never the note's words)."""
    state = _state(request)
    user = request.state.user
    form = await request.form()
    call = await run_in_threadpool(_get_call, state, request.path_params["call_id"])
    notes = annotations_of(state)
    try:
        tags = parse_tags(str(form.get("tags", "")))
        saved = await run_in_threadpool(lambda: notes.save(call.id, tags=tags, note=str(form.get("note", "")),
                                                           reviewed=form.get("reviewed") == "1",
                                                           user=user.username))
    except AnnotationError as exc:
        return _error(request, 400, f"Not saved: {exc}.")
    detail = f"tags={','.join(saved.tags) or '-'} reviewed={'yes' if saved.reviewed else 'no'} " \
             f"note={len(saved.note)} chars"
    await run_in_threadpool(state.users.log, user, "annotate", call_id=call.id, detail=detail,
                            client=_client(request))
    return RedirectResponse(f"/calls/{call.id}?saved=1#review", 303)


# -- dashboard and admin ------------------------------------------------------------------------------------------

def dashboard(request: Request) -> Response:
    state = _state(request)
    try:
        days = int(request.query_params.get("days", "14"))
    except ValueError:
        days = 14
    days = days if days in DASHBOARD_DAYS else 14
    today = datetime.now(state.tz).date()
    first: date = today - timedelta(days=days - 1)
    tests = request.query_params.get("tests") == "include"
    d = compute_dashboard(state.store, first, today, state.tz, tests=tests)
    before = compute_dashboard(state.store, *previous_period(first, today), state.tz, tests=tests)
    drop = compute_dropoff(state.store, first, today, state.tz, menu=state.config.dialog.menu,
                           not_heard=state.config.dialog.prompts.not_heard, tests=tests)
    since = f"since={first.isoformat()}&until={today.isoformat()}" + ("&tests=include" if tests else "")
    outcome_css = {"resolved": "c-resolved", "transferred": "c-transferred", "transfer_failed": "bad"}
    return render(request, "dashboard.html", {
        "nav": "dashboard", "d": d, "days": days, "choices": DASHBOARD_DAYS, "tests": tests,
        "definitions": DEFINITIONS,
        "per_day": charts.day_columns(d.per_day, width=1240, height=250),
        "outcomes": charts.hbars(d.outcomes, lambda b: f"/calls?{since}&outcome={b.key}",
                                 css=lambda b: outcome_css.get(b.key, "c-other")),
        "reasons": charts.hbars(d.transfer_reasons, lambda b: f"/calls?{since}&reason={b.key}"),
        "topics": charts.hbars(d.topics, lambda b: f"/calls?{since}&topic={b.key}"),
        "sentiment": charts.hbars(d.sentiment, lambda b: f"/calls?{since}&sentiment={b.key}"
                                  if b.key != "unknown" else None, css=lambda b: f"s-{b.key}"),
        "flags": charts.hbars(d.flags, lambda b: f"/calls?{since}&flag={b.key}", css=lambda b: "bad"),
        "since": since, "before": before, "changes": compare(d, before),
        "drop": drop, "drop_nodes": charts.hbars(drop.by_node, css=lambda b: "bad", **DROP_CHART),
        "drop_steps": charts.hbars(drop.by_step, css=lambda b: "bad", **DROP_CHART),
        "drop_intents": charts.hbars(drop.by_intent, css=lambda b: "bad", **DROP_CHART)})


def access_log_page(request: Request) -> Response:
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, "The access log is for admins.")
    state = _state(request)
    return render(request, "access.html", {"nav": "access", "entries": state.users.access_entries(300),
                                           "users": state.users.users()})


async def not_found(request: Request, exc: Exception) -> Response:
    return _error(request, 404, getattr(exc, "detail", "Not found."))


async def forbidden(request: Request, exc: Exception) -> Response:
    return _error(request, 403, getattr(exc, "detail", "Forbidden."))


def _error(request: Request, status: int, message: str) -> Response:
    if not hasattr(request.state, "session"):
        request.state.session = None
    return render(request, "error.html", {"status": status, "message": message}, status)
