"""The dispatch desk's answers to the autopilot, from the board's side panel (htmx) or a plain form
on the ticket page: apply or dismiss a suggestion, and undo a booking it made.

Thin, as the board's own views: each parses the request, calls one service as the signed-in
dispatcher and shows the ticket's panel again with the outcome (a refusal comes back as the panel
explaining why, 409 included, which the board swaps in). Dispatchers and admins only, POST with
the CSRF token for every change (the board sends it in its htmx headers).

"Undo" of an autopilot booking is the dispatcher's own booking in its place: the panel offers the
engine's best windows, and picking one moves the booked job there (schedule.move) or, while the
customer still has the autopilot's windows before them, books it there instead (schedule.book,
which withdraws the proposal). The customer hears of the new time as for any board booking, and
the job is the dispatcher's from then on: the autopilot does not propose it again.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from dispatch.common.admin_base import actor_for_request
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.scheduling.board import board_ticket_panel, ticket_board_marks
from dispatch.scheduling.booking import SCHEDULE_BOOK, SCHEDULE_MOVE, appointment_book, appointment_move, window_text
from dispatch.scheduling.engine import slots_suggest
from dispatch.scheduling.selectors import appointments_booked_for_ticket
from dispatch.scheduling.views import board_access, request_day, request_techs
from dispatch.tickets.models import Ticket
from dispatch.tickets.states import TicketState

from .flags import UNDO_STATES
from .models import Suggestion
from .selectors import autopilot_decisions
from .suggestions import SUGGESTION_APPLY, SUGGESTION_DISMISS, suggestion_apply, suggestion_dismiss

UNDO_WINDOWS = 3
UNDO_REASON = "The dispatcher replaced the autopilot's {what} with a time they picked."


def _keys(values) -> list[uuid.UUID]:
    keys = []
    for value in values:
        try:
            keys.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return keys


def _board_panel(request, ticket_id, *, outcome: str = "", refusal: DispatchError | None = None, status: int = 200):
    """The board's own side panel for the ticket, with what just happened above it."""
    panel = board_ticket_panel(ticket_id=ticket_id, technician_ids=request_techs(request), now=timezone.now())
    if panel is None:
        raise Http404("No such ticket.")
    context = {
        "panel": panel,
        "error": None,
        "day": request_day(request),
        "techs": request_techs(request),
        "marks": ticket_board_marks(panel.ticket),
        "outcome": outcome,
        "refusal": refusal,
    }
    response = render(request, "autopilot/_board_panel.html", context, status=status)
    if refusal is None:
        # The lanes and the queue reload at once (the board listens for this event).
        response["HX-Trigger"] = "board-changed"
    return response


def _back(request, suggestion: Suggestion) -> HttpResponseRedirect:
    """Where a plain form returns: the page it came from if it is ours, else the ticket page."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:tickets_ticket_change", args=[suggestion.ticket_id])
    return HttpResponseRedirect(target)


def _suggestion(suggestion_id) -> Suggestion:
    suggestion = Suggestion.objects.filter(pk=suggestion_id).only("id", "ticket_id", "action").first()
    if suggestion is None:
        raise Http404("No such suggestion.")
    return suggestion


@require_POST
@board_access
def apply(request, suggestion_id):
    suggestion = _suggestion(suggestion_id)
    try:
        outcome = suggestion_apply(actor=actor_for_request(request, SUGGESTION_APPLY), suggestion_id=suggestion.pk)
    except DispatchError as error:
        if request.htmx:
            return _board_panel(request, suggestion.ticket_id, refusal=error, status=error.status)
        messages.error(request, error.message)
        return _back(request, suggestion)
    event = outcome.event
    said = f"{outcome.ticket.short_ref}: applied ({event.tool_name}) — {event.before_state} → {event.after_state}."
    if request.htmx:
        return _board_panel(request, suggestion.ticket_id, outcome=said)
    messages.success(request, said)
    return _back(request, suggestion)


@require_POST
@board_access
def dismiss(request, suggestion_id):
    suggestion = _suggestion(suggestion_id)
    try:
        suggestion_dismiss(
            actor=actor_for_request(request, SUGGESTION_DISMISS),
            suggestion_id=suggestion.pk,
            note=request.POST.get("note", "")[:1000],
        )
    except DispatchError as error:
        if request.htmx:
            return _board_panel(request, suggestion.ticket_id, refusal=error, status=error.status)
        messages.error(request, error.message)
        return _back(request, suggestion)
    said = "Dismissed: the ticket stays as it is, for you to handle."
    if request.htmx:
        return _board_panel(request, suggestion.ticket_id, outcome=said)
    messages.success(request, said)
    return _back(request, suggestion)


# --- undo ---------------------------------------------------------------------------------------------


def _undo_context(request, ticket: Ticket, *, refusal: DispatchError | None = None) -> dict:
    decision = autopilot_decisions([ticket.pk]).get(ticket.pk)
    booking = appointments_booked_for_ticket(ticket_id=ticket.pk).select_related("technician").first()
    windows = []
    if ticket.state in UNDO_STATES:
        suggestion = slots_suggest(
            ticket=ticket, limit=UNDO_WINDOWS, now=timezone.now(), technician_ids=_keys(request_techs(request)) or None
        )
        windows = [
            {
                "technician_id": window.technician_id,
                "technician_name": window.technician_name,
                "start_iso": window.start.isoformat(),
                "end_iso": window.end.isoformat(),
                "label": window_text(window.start, window.end),
                "reason": window.reason.removeprefix(f"{window.technician_name}: "),
            }
            for window in suggestion.windows
            if booking is None or (window.start, window.technician_id) != (booking.start, booking.technician_id)
        ]
    return {
        "ticket": ticket,
        "decision": decision,
        "booking": booking,
        "booking_label": window_text(booking.start, booking.end) if booking else "",
        "windows": windows,
        "moving": ticket.state == TicketState.SCHEDULED,
        "refusal": refusal,
        "day": request_day(request),
        "techs": request_techs(request),
        "panel_url": reverse("board:ticket", args=[ticket.pk]),
    }


def _ticket(ticket_id) -> Ticket:
    ticket = Ticket.objects.select_related("site").filter(pk=ticket_id).first()
    if ticket is None:
        raise Http404("No such ticket.")
    return ticket


def _moment(request, name: str):
    value = (request.POST.get(name) or "").strip()
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise invalid_request(f"{name} must be an ISO-8601 date-time with a timezone.", field=name)
    return moment


@require_GET
@board_access
def undo(request, ticket_id):
    """The panel's "Undo…": what the autopilot did and why, and the times to put in its place."""
    return render(request, "autopilot/_undo.html", _undo_context(request, _ticket(ticket_id)))


@require_POST
@board_access
def undo_apply(request, ticket_id):
    """The dispatcher's pick in place of the autopilot's booking: a move, or a booking of their own."""
    ticket = _ticket(ticket_id)
    decision = autopilot_decisions([ticket.pk]).get(ticket.pk)
    what = "booking" if ticket.state == TicketState.SCHEDULED else "proposal"
    try:
        # The ticket as the dispatcher saw it when they picked: a customer's reply or another
        # dispatcher's change in between is not overridden by this click.
        version = int(request.POST.get("version", ""))
    except ValueError:
        version = None
    if ticket.state not in UNDO_STATES or decision is None or version is None:
        error = DispatchError(
            "UNDO_NOT_APPLICABLE",
            "There is no booking or proposal of the autopilot's to undo on this job now.",
            status=409,
            dimension="state",
        )
        return render(request, "autopilot/_undo.html", _undo_context(request, ticket, refusal=error), status=409)
    request_note = {
        "reason": UNDO_REASON.format(what=what),
        "undo_of": str(decision.event_id) if decision else None,
    }
    try:
        if ticket.state == TicketState.SCHEDULED:
            booking = appointments_booked_for_ticket(ticket_id=ticket.pk).first()
            if booking is None:
                raise DispatchError(
                    "APPOINTMENT_NOT_BOOKED", "The job has no booking to move any more.", status=409, dimension="state"
                )
            outcome = appointment_move(
                actor=actor_for_request(request, SCHEDULE_MOVE),
                appointment_id=booking.pk,
                technician_id=request.POST.get("technician_id", ""),
                start=_moment(request, "start"),
                request=request_note,
                expected_version=version,
            )
        else:
            outcome = appointment_book(
                actor=actor_for_request(request, SCHEDULE_BOOK),
                ticket_id=ticket.pk,
                technician_id=request.POST.get("technician_id", ""),
                start=_moment(request, "start"),
                end=_moment(request, "end"),
                request=request_note,
                expected_version=version,
            )
    except DispatchError as error:
        ticket.refresh_from_db()
        context = _undo_context(request, ticket, refusal=error)
        return render(request, "autopilot/_undo.html", context, status=error.status)
    result = outcome.result
    said = f"{outcome.ticket.short_ref} is now with {result['technician_name']}, {result['window_text']}."
    return _board_panel(request, ticket.pk, outcome=said)
