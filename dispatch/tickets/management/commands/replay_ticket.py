"""`manage.py replay_ticket <id>`: rebuild a ticket's state from its transitions and check it.

The rebuild starts from the creation row, takes each StateTransition in `seq` order, and holds
every step to the graph declared on Ticket. It then reads the ticket's audit events, which
carry their own before/after states, and checks that both records tell the same story.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from itertools import groupby

from django.core.management.base import BaseCommand, CommandError

from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.states import CREATION_STATES
from dispatch.tickets.transitions import declared_edges


@dataclass
class Replay:
    ticket: Ticket
    transitions: list[StateTransition]
    rebuilt_state: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def path(self) -> list[str]:
        return [t.to_state for t in self.transitions]

    @property
    def matches(self) -> bool:
        return not self.problems


def _rebuild(replay: Replay) -> None:
    """Walk the transition rows: creation first, then gapless seqs, each a declared edge."""
    edges = declared_edges()
    state = ""
    for expected_seq, row in enumerate(replay.transitions, start=1):
        where = f"transition #{row.seq} ({row.from_state or '(created)'} → {row.to_state})"
        if row.seq != expected_seq:
            replay.problems.append(f"transition #{expected_seq} is missing (the next row is #{row.seq})")
        if not state:
            if row.from_state or row.to_state not in CREATION_STATES:
                replay.problems.append(f"{where} is not a creation into one of {', '.join(sorted(CREATION_STATES))}")
        else:
            if row.from_state != state:
                replay.problems.append(
                    f"{where} starts from {row.from_state or '(created)'} but the ticket was in {state}"
                )
            if (row.from_state, row.to_state) not in edges:
                replay.problems.append(f"{where} is not an edge of the declared graph")
        state = row.to_state
    if not replay.transitions:
        replay.problems.append("the ticket has no transition rows, not even its creation")
    replay.rebuilt_state = state


def _cross_check_audit(replay: Replay) -> None:
    """Hold the transition rows against the audit events that wrote them."""
    ticket = replay.ticket
    for row in replay.transitions:
        if row.audit_event.ticket_id != ticket.id:
            replay.problems.append(
                f"transition #{row.seq} points at audit event #{row.audit_event.seq}, which belongs to another ticket"
            )
    rows_by_event = {
        event_id: list(rows) for event_id, rows in groupby(replay.transitions, key=lambda t: t.audit_event_id)
    }
    state = ""
    for event in AuditEvent.objects.filter(ticket=ticket).order_by("seq"):
        label = f"audit event #{event.seq} ({event.tool_name})"
        if event.before_state != state:
            replay.problems.append(
                f"{label} starts from {event.before_state or '(created)'} but the audit trail left the ticket in "
                f"{state or '(not created)'}"
            )
        rows = rows_by_event.get(event.id, [])
        if rows:
            if rows[0].from_state != event.before_state or rows[-1].to_state != event.after_state:
                replay.problems.append(
                    f"{label} records {event.before_state or '(created)'} → {event.after_state} but its transitions "
                    f"go {rows[0].from_state or '(created)'} → {rows[-1].to_state}"
                )
        elif event.before_state != event.after_state:
            replay.problems.append(
                f"{label} moved the ticket {event.before_state or '(created)'} → {event.after_state} "
                "but no transition row records it"
            )
        state = event.after_state
    if state != ticket.state:
        replay.problems.append(f"the audit trail ends in {state or '(nothing)'} but the stored state is {ticket.state}")


def ticket_replay(ticket: Ticket) -> Replay:
    """Rebuild `ticket`'s state from its transitions and list every disagreement found."""
    transitions = list(StateTransition.objects.filter(ticket=ticket).select_related("audit_event").order_by("seq"))
    replay = Replay(ticket=ticket, transitions=transitions)
    _rebuild(replay)
    _cross_check_audit(replay)
    if replay.rebuilt_state != ticket.state:
        replay.problems.insert(
            0, f"rebuilt state {replay.rebuilt_state or '(none)'} does not match the stored state {ticket.state}"
        )
    return replay


class Command(BaseCommand):
    help = (
        "Rebuild a ticket's state from its StateTransition rows, check each step against the declared "
        "graph and the audit events, and say whether it matches the stored state (exit 0) or not (exit 1)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("ticket_id", help="The ticket's UUID.")

    def handle(self, *args, ticket_id: str, **options) -> None:
        try:
            ticket = Ticket.objects.get(pk=uuid.UUID(ticket_id))
        except (ValueError, Ticket.DoesNotExist):
            raise CommandError(f"No ticket {ticket_id}.") from None
        replay = ticket_replay(ticket)
        self.stdout.write(
            f"{ticket.short_ref} · {ticket.summary} (stored state {ticket.state}, version {ticket.version})"
        )
        for row in replay.transitions:
            event = row.audit_event
            self.stdout.write(
                f"  #{row.seq:<3} {(row.from_state or '(created)') + ' → ' + row.to_state:<52} "
                f"{event.tool_name:<28} {event.actor_role}/{event.actor_type} {event.actor_id}  audit #{event.seq}"
            )
        self.stdout.write("Path: " + " → ".join(replay.path))
        if replay.matches:
            self.stdout.write(self.style.SUCCESS(f"Rebuilt state {replay.rebuilt_state} matches the stored state."))
            return
        raise CommandError(
            f"Replay of {ticket.short_ref} does not match:\n" + "\n".join(f"  - {p}" for p in replay.problems)
        )
