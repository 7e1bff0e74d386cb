"""What the autopilot adds to the ticket list and the dispatch board, registered in the catalog
when the app starts (the board and the list import no autopilot):

- "autopilot": the ticket's current proposal, booking or dispatch is the autopilot's, with its
  reason; on the board, "Undo" replaces it with a time the dispatcher picks;
- "suggestion waiting": the autopilot left what it would do for a dispatcher's click; the board
  lists these under "Needs attention", with "Apply" and "Dismiss".
"""

from __future__ import annotations

from django.urls import reverse

from dispatch.technicians.models import Technician
from dispatch.tickets.catalog import MarkAction, TicketFlag, TicketMark
from dispatch.tickets.states import TicketState

from .models import Suggestion
from .selectors import autopilot_decisions

# Where the autopilot's decision is the one the ticket stands on.
DECIDED_STATES = frozenset({TicketState.SCHEDULE_PROPOSED, TicketState.SCHEDULED, TicketState.DISPATCHED})
# Where it leaves suggestions: a job to propose times for, an emergency to send someone to, a
# dispatch nobody acknowledged to give to someone else.
SUGGESTED_STATES = frozenset({TicketState.TRIAGED, TicketState.READY_TO_SCHEDULE, TicketState.DISPATCHED})
UNDO_STATES = frozenset({TicketState.SCHEDULE_PROPOSED, TicketState.SCHEDULED})

_DONE = {
    (TicketState.SCHEDULE_PROPOSED, "schedule.propose"): ("proposed", ""),
    (TicketState.SCHEDULED, "schedule.propose"): ("booked", "The customer picked one of the windows it offered. "),
    (TicketState.DISPATCHED, "assignment.dispatch"): ("dispatched", ""),
}


def _undo(ticket) -> tuple[MarkAction, ...]:
    if ticket.state in UNDO_STATES:
        return (
            MarkAction(
                "Undo…",
                reverse("autopilot:undo", args=[ticket.pk]),
                method="get",
                title="Pick another time or technician instead of the autopilot's",
            ),
        )
    return (
        MarkAction(
            "Undo on the ticket page",
            reverse("admin:tickets_ticket_change", args=[ticket.pk]),
            method="link",
            title="A dispatched job is taken back on the ticket page (unassign the technician)",
        ),
    )


def autopilot_marks(tickets) -> dict:
    tickets = [ticket for ticket in tickets if ticket.state in DECIDED_STATES]
    decisions = autopilot_decisions([ticket.pk for ticket in tickets])
    marks = {}
    for ticket in tickets:
        decision = decisions.get(ticket.pk)
        if decision is None:
            continue
        text, lead = _DONE.get((ticket.state, decision.tool_name), ("decided", ""))
        marks[ticket.pk] = TicketMark(
            text,
            f"{lead}{decision.reason}".strip() or "The autopilot decided this.",
            actions=_undo(ticket),
            since=decision.created_at,
        )
    return marks


def autopilot_ticket_ids(queryset) -> list:
    tickets = list(queryset.filter(state__in=list(DECIDED_STATES)).select_related(None).order_by().only("id", "state"))
    return list(autopilot_marks(tickets))


def _suggestion_text(suggestion: dict, names: dict) -> str:
    payload = suggestion["payload"] or {}
    if suggestion["action"] == "schedule.propose":
        count = len(payload.get("options") or [])
        return f"propose {count} window{'' if count == 1 else 's'}"
    if suggestion["action"] == "assignment.dispatch":
        return f"send {names.get(str(payload.get('tech_id')), 'a technician')} now"
    if suggestion["action"] == "assignment.reassign":
        return f"send {names.get(str(payload.get('tech_id')), 'another technician')} instead"
    return suggestion["action"]


def suggestion_marks(tickets) -> dict:
    """The open suggestions of these tickets: two queries (the suggestions, the technicians named)."""
    tickets = {ticket.pk: ticket for ticket in tickets if ticket.state in SUGGESTED_STATES}
    if not tickets:
        return {}
    rows = list(
        Suggestion.objects.filter(ticket_id__in=list(tickets), status=Suggestion.Status.OPEN)
        .order_by("created_at")
        .values("id", "ticket_id", "action", "payload", "reason", "ticket_version", "ticket__version", "created_at")
    )
    tech_ids = {
        str((row["payload"] or {}).get("tech_id"))
        for row in rows
        if row["action"] in ("assignment.dispatch", "assignment.reassign")
    }
    names = {}
    if tech_ids:
        names = {
            str(pk): name
            for pk, name in Technician.objects.filter(pk__in=[t for t in tech_ids if t != "None"]).values_list(
                "pk", "display_name"
            )
        }
    marks = {}
    for row in rows:
        if row["ticket_id"] in marks:
            continue
        stale = row["ticket_version"] != row["ticket__version"]
        detail = row["reason"]
        if stale:
            detail = "The ticket changed since; applying it will be refused. " + detail
        marks[row["ticket_id"]] = TicketMark(
            _suggestion_text(row, names),
            detail,
            actions=(
                MarkAction(
                    "Apply",
                    reverse("autopilot:suggestion_apply", args=[row["id"]]),
                    tone="primary",
                    title="Do this now, as you, through the same service",
                ),
                MarkAction("Dismiss", reverse("autopilot:suggestion_dismiss", args=[row["id"]])),
            ),
            since=row["created_at"],
        )
    return marks


def suggestion_ticket_ids(queryset) -> list:
    return list(
        Suggestion.objects.filter(
            status=Suggestion.Status.OPEN,
            ticket__in=queryset.filter(state__in=list(SUGGESTED_STATES)).order_by().values("pk"),
        ).values_list("ticket_id", flat=True)
    )


def suggestions_digest() -> list:
    """What the board's live refresh includes: the open suggestions (a few rows, one query)."""
    return list(Suggestion.objects.filter(status=Suggestion.Status.OPEN).order_by("id").values_list("id", "ticket_id"))


AUTOPILOT = TicketFlag(
    "autopilot",
    "autopilot",
    DECIDED_STATES,
    autopilot_marks,
    autopilot_ticket_ids,
    icon="A",
    column=False,
)

SUGGESTION_WAITING = TicketFlag(
    "suggestion_waiting",
    "suggestion waiting",
    SUGGESTED_STATES,
    suggestion_marks,
    suggestion_ticket_ids,
    icon="?",
    column=False,
    attention=True,
    digest=suggestions_digest,
)
