"""The dispatch board's pages: the day view, its live partial, the side panel, book and move.

Thin: each view parses the request, calls one selector (board.py) or one service (booking.py)
and renders. The live partial is polled every few seconds: the page sends the version of what it
shows (X-Board-Version) and, when nothing on it changed, gets 204 No Content, which htmx does not
swap, instead of the whole day rendered again. Dispatchers and admins only; everyone else gets 403, anonymous users the login.
The jobs on the lanes and in the panel also carry the flags other phases keep about tickets
(closeout's missing evidence), read through the catalog, as the ticket list reads them.
"""

from __future__ import annotations

import json
from datetime import date
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dispatch.common.admin_base import actor_for_request
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.roles import Role, role_of_user

from .board import board_day, board_marks, board_ticket_panel, board_version, company_today, ticket_board_marks
from .booking import SCHEDULE_BOOK, SCHEDULE_MOVE, appointment_book, appointment_move
from .day_planner import SCHEDULE_OPTIMIZE_DAY, day_plan, day_plan_apply
from .inputs import role_check

BOARD_ROLES = frozenset({Role.DISPATCHER, Role.ADMIN})
# The version of the live part the page shows, sent with each poll and answered with each refresh.
VERSION_HEADER = "X-Board-Version"
NOW_HEADER = "X-Board-Now"


def board_access(view):
    """Login required; then only the dispatch desk (dispatchers, admins) may see or change the board."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            # A session that ended under an open board: the page itself goes to the login,
            # rather than the login form being swapped into the lanes or read as a move's answer.
            if request.htmx:
                return HttpResponseClientRedirect(f"{settings.LOGIN_URL}?next={reverse('board:day')}")
            if request.method == "POST":
                return JsonResponse(
                    {"ok": False, "code": "AUTH_REQUIRED", "message": "Your session has ended; log in again."},
                    status=401,
                )
            return redirect_to_login(request.get_full_path())
        if role_of_user(request.user) not in BOARD_ROLES:
            raise PermissionDenied("The dispatch board is for dispatchers.")
        return view(request, *args, **kwargs)

    return guarded


def request_day(request) -> date:
    """?day=YYYY-MM-DD, else today in the company's timezone (a malformed date is simply today)."""
    value = request.GET.get("day") or request.POST.get("day") or ""
    try:
        parsed = parse_date(value)
    except ValueError:
        parsed = None
    return parsed or company_today()


def request_techs(request) -> list[str]:
    return [value for value in (request.GET.getlist("tech") or request.POST.getlist("tech")) if value]


def _moment(request, field: str):
    value = (request.POST.get(field) or "").strip()
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise invalid_request(f"{field} must be an ISO-8601 date-time with a timezone.", field=field)
    return moment


def _board_context(request, day: date, *, version: str | None = None) -> dict:
    now, techs = timezone.now(), request_techs(request)
    # The version is read before the day: a change landing in between makes the next poll render
    # again, where the other order could show it under the older version and keep it.
    version = version or board_version(day=day, technician_ids=techs, now=now)
    board = board_day(day=day, technician_ids=techs, now=now)
    board_marks(board)
    return {"board": board, "board_version": version}


@never_cache
@require_GET
@board_access
def board(request):
    context = {
        **admin.site.each_context(request),
        "title": "Board",
        **_board_context(request, request_day(request)),
    }
    return render(request, "scheduling/board.html", context)


@never_cache
@require_GET
@board_access
def board_live(request):
    """The lanes, queue and escalations alone: what the page swaps in every few seconds, or 204 No
    Content when the version the page sent is still the current one (nothing is read beyond it)."""
    day = request_day(request)
    version = board_version(day=day, technician_ids=request_techs(request), now=timezone.now())
    if request.headers.get(VERSION_HEADER) == version:
        response = HttpResponse(status=204)
    else:
        response = render(request, "scheduling/_live.html", _board_context(request, day, version=version))
    response[VERSION_HEADER] = version
    # The server's clock with every answer, 204s included: the page's clocks (now line, ages,
    # SLA countdowns) and its "checked" time stay right while nothing is re-rendered.
    response[NOW_HEADER] = timezone.now().isoformat()
    return response


@require_GET
@board_access
def ticket_panel(request, ticket_id):
    panel = board_ticket_panel(ticket_id=ticket_id, technician_ids=request_techs(request), now=timezone.now())
    if panel is None:
        raise Http404("No such ticket.")
    return _panel(request, panel)


def _panel(request, panel, *, error: DispatchError | None = None, status: int = 200):
    context = {"panel": panel, "error": error, "day": request_day(request), "techs": request_techs(request)}
    if panel is not None:
        context["marks"] = ticket_board_marks(panel.ticket)
    return render(request, "scheduling/_panel.html", context, status=status)


def _refreshed(response):
    # The page listens for this event and reloads the lanes and the queue at once.
    response["HX-Trigger"] = "board-changed"
    return response


@require_POST
@board_access
def book(request):
    """Book a queued ticket on the window the dispatcher picked; the panel shows the outcome."""
    ticket_id = request.POST.get("ticket_id", "")
    try:
        outcome = appointment_book(
            actor=actor_for_request(request, SCHEDULE_BOOK),
            ticket_id=ticket_id,
            technician_id=request.POST.get("technician_id", ""),
            start=_moment(request, "start"),
            end=_moment(request, "end"),
            crew=request.POST.getlist("crew"),
        )
    except DispatchError as error:
        # The refusal, then the ticket as it is now with fresh windows to pick from instead.
        panel = board_ticket_panel(
            ticket_id=ticket_id, technician_ids=request_techs(request), now=timezone.now(), refusal=error
        )
        return _panel(request, panel, error=error, status=error.status)
    panel = board_ticket_panel(ticket_id=outcome.ticket.id, now=timezone.now(), booked=outcome.result)
    return _refreshed(_panel(request, panel))


@require_POST
@board_access
def move(request):
    """A dragged block: the server re-checks every rule; JSON says what happened, in words."""
    try:
        outcome = appointment_move(
            actor=actor_for_request(request, SCHEDULE_MOVE),
            appointment_id=request.POST.get("appointment_id", ""),
            technician_id=request.POST.get("technician_id", ""),
            start=_moment(request, "start"),
        )
    except DispatchError as error:
        return JsonResponse(
            {"ok": False, "code": error.code, "message": error.message, "reasons": error.details.get("reasons", [])},
            status=error.status,
        )
    result = outcome.result
    return JsonResponse(
        {
            "ok": True,
            "message": f"{outcome.ticket.short_ref} moved to {result['technician_name']}, {result['window_text']}.",
            "appointment_id": result["appointment_id"],
        }
    )


def _plan_panel(request, **context):
    context = {"day": request_day(request), "techs": request_techs(request), **context}
    return render(request, "scheduling/_day_plan.html", context, status=context.pop("status", 200))


@require_POST
@board_access
def optimize(request):
    """Optimize day: the day planner's proposal for the day on the board (its technicians, when
    filtered), shown in the side panel; nothing changes until the dispatcher applies it."""
    day = request_day(request)
    try:
        role_check(SCHEDULE_OPTIMIZE_DAY, actor_for_request(request, SCHEDULE_OPTIMIZE_DAY))
        if day < company_today():
            raise invalid_request("A day in the past cannot be planned.", field="day")
        plan = day_plan(
            day=day, technician_ids=request_techs(request) or None, include_queue=request.POST.get("queue") == "1"
        )
    except DispatchError as error:
        return _plan_panel(request, error=error, status=error.status)
    return _plan_panel(
        request,
        plan=plan,
        moves_json=json.dumps([move.as_json() for move in plan.moves]),
        include_queue=request.POST.get("queue") == "1",
    )


@require_POST
@board_access
def optimize_apply(request):
    """Apply the proposal the dispatcher saw, exactly: all of its moves, or none."""
    try:
        moves = json.loads(request.POST.get("moves") or "null")
    except ValueError:
        moves = None
    try:
        result = day_plan_apply(
            actor=actor_for_request(request, SCHEDULE_OPTIMIZE_DAY), moves=moves, day=request_day(request)
        )
    except DispatchError as error:
        return _plan_panel(request, error=error, status=error.status)
    # Only for the words: what the preview said it saves (a number, or nothing is said).
    saved = request.POST.get("saved", "")
    return _refreshed(_plan_panel(request, applied=result, saved=saved if saved.isdigit() else ""))
