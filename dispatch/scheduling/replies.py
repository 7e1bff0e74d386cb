"""A customer's numbered answer to proposed windows ("2") becomes a booking, through the same
schedule services a dispatcher uses.

Intake's `message_receive` reads the digit (IntakeResult.reply_option); the face that received
the message (the SMS webhook, the agent toolset) hands it here. The booking is made by the SERVICE actor on the customer's
behalf with `schedule_confirm` (after `schedule_release` when a stale-proposal wake-up had put
the ticket on hold), and the customer gets the usual confirmation.

What a reply does, decided once and kept simple for the customer:
- a number of an open proposal's window: that window is booked and confirmed;
- the same number again once booked: nothing (no second booking, no second message: the
  confirmation they already have says it all, and a retried SMS must not spam them);
- another number once booked: one short note that the visit stays as booked (changing it is a
  dispatcher's decision, the inbound message is on the ticket for them);
- a number no window has ("5"): one short message listing the numbered windows again;
- a window that has passed or was just taken by another booking: one short apology saying new
  times will follow; nothing is booked.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.actors import Actor, service_actor
from dispatch.common.errors import DispatchError
from dispatch.scheduling.models import ScheduleHold, ScheduleProposal
from dispatch.scheduling.notifications import (
    already_booked_notify,
    reply_help_notify,
    reply_unavailable_notify,
)
from dispatch.scheduling.selectors import (
    appointments_booked_for_ticket,
    hold_active_for_ticket,
    proposal_open_for_ticket,
)
from dispatch.scheduling.services import schedule_confirm, schedule_release, schedule_rollback
from dispatch.tickets.models import Ticket
from dispatch.tickets.services import Outcome, ticket_locked
from dispatch.tickets.states import TicketState

log = logging.getLogger(__name__)

REPLY_ACTOR = "customer-reply"
ANSWERABLE_STATES = (TicketState.SCHEDULE_PROPOSED, TicketState.PENDING_CUSTOMER_CONFIRMATION)
BOOKED_STATES = (TicketState.SCHEDULED, TicketState.DISPATCHED)
# Refusals that mean "this window cannot be had any more", answered with an apology rather
# than an error: the technician was booked meanwhile, or the hold's snapshot cannot be restored.
UNAVAILABLE_CODES = frozenset(
    {"TECH_UNAVAILABLE", "SCHEDULE_WINDOW_NOT_PROPOSED", "SCHEDULE_WINDOW_PASSED", "HOLD_SNAPSHOT_MISSING"}
)


class _Unavailable(Exception):
    """The chosen window cannot be booked; the apology is sent after the rollback."""


def _reply_channel(message: Any) -> str | None:
    channel = getattr(message, "channel", None)
    return channel if channel in ("SMS", "EMAIL") else None


def _hold_lift(*, actor: Actor, ticket: Ticket, hold: ScheduleHold, request: dict) -> None:
    """Take the ticket off its customer-confirmation hold, back to the proposal it was held on."""
    if timezone.now() <= hold.confirmation_end:
        schedule_release(actor=actor, ticket_id=ticket.pk, customer_confirmation_id=hold.pk, request=request)
        return
    # The hold's confirmation window has passed, so schedule.release (which only accepts a
    # confirmation inside it) refuses; the customer has still answered, so the hold is rolled
    # back to the same snapshot and the window booked if it is still free.
    schedule_rollback(
        actor=actor,
        ticket_id=ticket.pk,
        confirmation_id=hold.pk,
        reason="The customer answered after the confirmation window.",
        request={**request, "reason": "The customer answered after the confirmation window."},
    )


def _book(*, actor: Actor, ticket: Ticket, proposal: ScheduleProposal, option: int, inbound_key: str) -> Outcome | None:
    chosen = proposal.options[option - 1]
    start, end = parse_datetime(chosen["start"]), parse_datetime(chosen["end"])
    if start <= timezone.now():
        raise _Unavailable
    request = {
        "reply_option": option,
        "inbound_message_id": inbound_key,
        "on_behalf_of": "customer",
        "proposal_id": str(proposal.id),
    }
    if ticket.state == TicketState.PENDING_CUSTOMER_CONFIRMATION:
        hold = hold_active_for_ticket(ticket_id=ticket.pk)
        if hold is None or hold.snapshot.get("state") != TicketState.SCHEDULE_PROPOSED:
            # Held for some other reason than this proposal: a dispatcher decides.
            return None
        _hold_lift(actor=actor, ticket=ticket, hold=hold, request={"customer_confirmation_id": str(hold.pk), **request})
    outcome = schedule_confirm(
        actor=actor,
        ticket_id=ticket.pk,
        start=start,
        end=end,
        tech_id=chosen.get("tech_id"),
        request={"start": chosen["start"], "end": chosen["end"], "tech_id": chosen.get("tech_id"), **request},
    )
    # schedule_confirm has queued the confirmation; the stale-proposal escalation, if any, is
    # closed (with its audit event) by the wake-up that resolves escalations whose cause cleared.
    return outcome


def proposal_reply_apply(*, result: Any) -> Outcome | None:
    """Book the window a customer's "1"/"2"/"3" reply names (or answer why not); None when nothing was booked."""
    option = getattr(result, "reply_option", None)
    ticket = getattr(result, "ticket", None)
    if option is None or ticket is None or getattr(result, "duplicate", False):
        # A retried webhook was answered the first time it arrived.
        return None
    message = getattr(result, "message", None)
    inbound_key = str(getattr(message, "pk", None) or uuid.uuid4())
    channel = _reply_channel(message)
    actor = service_actor(REPLY_ACTOR)
    try:
        with transaction.atomic():
            # Locked first, so two replies racing (two texts, a retry) are decided one after
            # the other: the second sees the booking the first made.
            locked = ticket_locked(ticket.pk)
            if locked.state in ANSWERABLE_STATES:
                proposal = proposal_open_for_ticket(ticket_id=locked.pk)
                if proposal is None:
                    return None
                if not 1 <= option <= len(proposal.options):
                    reply_help_notify(ticket=locked, proposal=proposal, inbound_key=inbound_key, prefer_channel=channel)
                    return None
                return _book(
                    actor=actor,
                    ticket=locked,
                    proposal=proposal,
                    option=option,
                    inbound_key=inbound_key,
                )
            if locked.state in BOOKED_STATES:
                accepted = (
                    ScheduleProposal.objects.filter(ticket=locked, status=ScheduleProposal.Status.ACCEPTED)
                    .order_by("-decided_at")
                    .first()
                )
                if accepted is not None and accepted.accepted_option == option - 1:
                    return None
                appointment = appointments_booked_for_ticket(ticket_id=locked.pk).first()
                if appointment is not None:
                    already_booked_notify(
                        ticket=locked, appointment=appointment, inbound_key=inbound_key, prefer_channel=channel
                    )
            return None
    except (_Unavailable, DispatchError) as exc:
        if isinstance(exc, DispatchError) and exc.code not in UNAVAILABLE_CODES:
            raise
        log.info("Reply %s to ticket %s could not be booked: %r", option, ticket.pk, exc)
    with transaction.atomic():
        locked = ticket_locked(ticket.pk)
        reply_unavailable_notify(ticket=locked, inbound_key=inbound_key, prefer_channel=channel)
    return None
