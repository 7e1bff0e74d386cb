"""What the evidence gate still wants of the jobs under way, for the ticket list's "missing
evidence" column and filter and the dispatch board's badge (registered as a catalog flag when
the app starts, so neither face imports closeout)."""

from __future__ import annotations

from dispatch.tickets.catalog import TicketFlag, TicketMark
from dispatch.tickets.states import TicketState

from .gate import SIGNATURE_KEY, TEMPLATE_NOT_FOUND, closeout_requirements_many
from .models import ChecklistResult

# From arriving on site until the invoice: while evidence can still be added, and while a job that
# was completed without it (a bypass) still waits to be closed.
EVIDENCE_WORK_STATES = frozenset(
    {
        TicketState.ON_SITE,
        TicketState.IN_PROGRESS,
        TicketState.ON_HOLD,
        TicketState.COMPLETED_PENDING_VERIFICATION,
        TicketState.VERIFIED,
        TicketState.INVOICED,
    }
)


def _counted(count: int, word: str) -> str:
    """A count only where there is more than one: "photo", "2 photos"."""
    return word if count == 1 else f"{count} {word}s"


def evidence_gap_mark(gate) -> TicketMark | None:
    """What the evidence gate still wants, in a few words ("2 photos · note · signature"), or None."""
    if gate.code == TEMPLATE_NOT_FOUND:
        return TicketMark(
            "no incident template", f"No incident template for {gate.incident_type or 'an empty incident type'}."
        )
    missing = list(gate.missing_evidence_keys)
    if not missing and not gate.invalid_evidence_refs:
        return None
    photos = [key for key in missing if key.startswith("photo")]
    notes = [key for key in missing if key.startswith("note")]
    others = [key for key in missing if key not in photos and key not in notes and key != SIGNATURE_KEY]
    parts = []
    if photos:
        parts.append(_counted(len(photos), "photo"))
    if notes:
        parts.append(_counted(len(notes), "note"))
    if others:
        parts.append(_counted(len(others), "item"))
    if SIGNATURE_KEY in missing:
        parts.append("signature")
    if gate.invalid_evidence_refs:
        parts.append(f"{len(gate.invalid_evidence_refs)} unreadable")
    named = [key.replace("_", " ") for key in missing if key != SIGNATURE_KEY]
    if SIGNATURE_KEY in missing:
        named.append("the customer's signature (or why there is none)")
    detail = "Missing: " + ", ".join(named) if named else ""
    if gate.invalid_evidence_refs:
        detail += ("; " if detail else "") + "unreadable: " + ", ".join(gate.invalid_evidence_refs)
    return TicketMark(" · ".join(parts), detail)


def evidence_gap_marks(tickets) -> dict:
    """{ticket id: mark} for the tickets among these whose evidence gate is not satisfied, read as
    the technician's day reads it (closeout_requirements_many with each job's latest checklist
    submission, whose no-signature reason counts): four queries, whatever the number of tickets."""
    tickets = [ticket for ticket in tickets if ticket.state in EVIDENCE_WORK_STATES]
    if not tickets:
        return {}
    submissions: dict = {}
    for result in (
        ChecklistResult.objects.filter(ticket_id__in=[ticket.id for ticket in tickets])
        .only("ticket_id", "checklist_status", "no_signature_reason")
        .order_by("ticket_id", "-created_at", "-id")
    ):
        submissions.setdefault(result.ticket_id, (result.checklist_status, result.no_signature_reason))
    gates = closeout_requirements_many(tickets, submissions)
    marks = {ticket_id: evidence_gap_mark(gate) for ticket_id, gate in gates.items()}
    return {ticket_id: mark for ticket_id, mark in marks.items() if mark is not None}


def evidence_gap_ticket_ids(queryset) -> list:
    """The ids of the tickets of `queryset` with evidence missing (the list filter).

    The gate's rules (the template's keys, waivers, the signature rule, unreadable files) run in
    Python over loaded rows, not in SQL, so the filter evaluates the gate for every ticket of the
    queryset in a work state: the jobs under way or waiting for closeout, a set bounded by the
    office's open work, in the same five queries whatever its size. Closed and cancelled tickets,
    most of the table in time, are never read; the list then keeps the ids found."""
    tickets = list(
        queryset.filter(state__in=list(EVIDENCE_WORK_STATES))
        .select_related(None)
        .order_by()
        .only("id", "state", "incident_type")
    )
    return list(evidence_gap_marks(tickets))


MISSING_EVIDENCE = TicketFlag(
    "missing_evidence",
    "missing evidence",
    EVIDENCE_WORK_STATES,
    evidence_gap_marks,
    evidence_gap_ticket_ids,
)
