"""A technician's text to the dispatch number: "Y" acknowledges the job, anything else goes to
the dispatcher.

Intake recognises the technician by the sender's phone and keeps the message without opening a
ticket (dispatch.intake.technician_messages); the SMS webhook hands it here, inside the
message's own transaction, so a provider's retry of the same message has no second effect.

- An acknowledgement ("Y", "yes", "ok", "on it") acknowledges the technician's most recent
  dispatch not yet acknowledged, through `dispatch_acknowledge` (tech.acknowledge, as the API's
  tool does) with the technician as the actor, and the technician gets a short confirmation.
- An acknowledgement with nothing waiting gets a short answer saying so, and goes to the
  dispatcher like any other text.
- Any other text goes to the dispatcher: when the technician has a job in hand, an escalation on
  that job puts it on the board ("Message from the technician", one tech.message audit event by
  the technician); the message itself waits in the messages for review either way.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from dispatch.common.actors import Actor, ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.messaging.services import outbox_enqueue
from dispatch.technicians.models import Technician
from dispatch.tickets.commands import command
from dispatch.tickets.models import StateTransition, Ticket
from dispatch.tickets.services import ticket_change
from dispatch.tickets.states import OPEN_STATES, TicketState

from .eta import dispatch_acknowledge
from .inputs import iso
from .models import Escalation, EscalationKind

log = logging.getLogger(__name__)

TECH_MESSAGE = command("tech.message", ["technician"], sorted(OPEN_STATES), None, "Message the dispatcher")

ACK_CONFIRMED_TEMPLATE = "tech_ack_confirmed"
ACK_NOTHING_TEMPLATE = "tech_ack_nothing_pending"
# The job a technician's text is most likely about: the one they are at, then the one they are
# heading to, then one waiting on parts or an approval.
JOB_IN_HAND_STATES = (
    TicketState.ON_SITE,
    TicketState.IN_PROGRESS,
    TicketState.DISPATCHED,
    TicketState.ON_HOLD,
    TicketState.APPROVAL_REQUIRED,
)
# Acknowledgements raced by another one (two texts at once) or a reassignment are tried again
# with the next dispatch waiting, at most this many times.
ACK_ATTEMPTS = 3
REASON_TEXT_MAX = 280


@dataclass
class TechnicianReply:
    """What became of a technician's text, for the face to record on the message."""

    # The ticket acknowledged, or the one the message was put on for the dispatcher.
    ticket_id: uuid.UUID | None = None
    acknowledged: bool = False
    for_dispatcher: bool = False
    outcome: dict[str, Any] = field(default_factory=dict)


def technician_actor(technician: Technician, *, correlation_id: str = "") -> Actor:
    """The technician as the actor of what their text does: the person, with the user id API
    tokens and pages use for them."""
    return Actor(
        actor_type=ActorType.HUMAN,
        actor_id=str(technician.user_id),
        role=Role.TECHNICIAN,
        user_id=technician.user_id,
        technician_id=technician.pk,
        request_id=str(uuid.uuid4()),
        correlation_id=correlation_id or str(uuid.uuid4()),
    )


def dispatch_waiting_for(technician_id: Any, *, exclude_ticket_ids: set | frozenset = frozenset()):
    """The technician's most recent dispatch not yet acknowledged (its DISPATCHED transition,
    ticket and site loaded), or None."""
    return (
        StateTransition.objects.filter(
            to_state=TicketState.DISPATCHED,
            ticket__state=TicketState.DISPATCHED,
            ticket__assigned_tech_id=technician_id,
            acknowledgement__isnull=True,
        )
        # The ticket's current dispatch is its latest transition.
        .filter(seq=F("ticket__transition_seq"))
        .exclude(ticket_id__in=list(exclude_ticket_ids))
        .select_related("ticket", "ticket__site")
        .order_by("-created_at", "-id")
        .first()
    )


def job_in_hand(technician_id: Any) -> Ticket | None:
    """The job the technician is most likely writing about (see JOB_IN_HAND_STATES), or None."""
    rank = Case(
        *[When(state=state, then=Value(index)) for index, state in enumerate(JOB_IN_HAND_STATES)],
        output_field=IntegerField(),
    )
    return (
        Ticket.objects.filter(assigned_tech_id=technician_id, state__in=JOB_IN_HAND_STATES)
        .annotate(in_hand_rank=rank)
        .order_by("in_hand_rank", "-updated_at", "-id")
        .first()
    )


def _answer(*, phone: str, template: str, ticket: Ticket | None, context: dict, outcome: dict) -> None:
    """Queue the short answer to the technician in this transaction; a refusal (no template, a bad
    number) is noted on the outcome instead of undoing what the text did."""
    try:
        message = outbox_enqueue(channel="SMS", recipient=phone, template=template, ticket=ticket, context=context)
    except DispatchError as exc:
        log.warning("No %s answer to technician %s: %s", template, phone[-4:], exc.code)
        outcome["reply_failed"] = {"template": template, "code": exc.code}
        return
    outcome["reply"] = message.body
    outcome["outbox_id"] = str(message.pk)


def _acknowledge(*, technician: Technician, actor: Actor, message: Any) -> TechnicianReply | None:
    """Acknowledge the technician's latest waiting dispatch; None when there is none."""
    tried: set = set()
    for _attempt in range(ACK_ATTEMPTS):
        transition = dispatch_waiting_for(technician.pk, exclude_ticket_ids=tried)
        if transition is None:
            return None
        ticket = transition.ticket
        try:
            outcome = dispatch_acknowledge(
                actor=actor,
                ticket_id=ticket.pk,
                request={"via": "sms", "inbound_message_id": str(message.pk)},
            )
        except DispatchError as exc:
            # Acknowledged meanwhile (another text, the app), reassigned or moved on: the next one.
            log.info("SMS acknowledgement of %s by %s skipped: %s", ticket.pk, technician.pk, exc.code)
            tried.add(ticket.pk)
            continue
        site = ticket.site
        result = {
            "action": "acknowledged",
            "ticket_ref": ticket.short_ref,
            "acknowledgement_id": outcome.result["acknowledgement_id"],
            "audit_event_id": str(outcome.event.pk),
        }
        _answer(
            phone=message.sender_phone,
            template=ACK_CONFIRMED_TEMPLATE,
            ticket=outcome.ticket,
            context={"address": site.address_line1 or site.address or site.name},
            outcome=result,
        )
        return TechnicianReply(ticket_id=ticket.pk, acknowledged=True, outcome=result)
    return None


def _reason(technician: Technician, text: str) -> str:
    text = " ".join((text or "").split())
    if len(text) > REASON_TEXT_MAX:
        text = text[: REASON_TEXT_MAX - 1] + "…"
    return f'{technician.display_name} texted: "{text}"' if text else f"{technician.display_name} sent an empty text."


def _to_dispatcher(*, technician: Technician, actor: Actor, message: Any, why: str) -> TechnicianReply:
    """Put the text in front of the dispatcher: on the board, on the job in hand, when there is one."""
    ticket = job_in_hand(technician.pk)
    outcome: dict[str, Any] = {"action": "to_dispatcher", "why": why}
    if ticket is None:
        return TechnicianReply(for_dispatcher=True, outcome=outcome)
    trigger_key = f"inbound:{message.pk}"
    try:
        with ticket_change(
            actor=actor,
            command=TECH_MESSAGE,
            ticket_id=ticket.pk,
            request={"via": "sms", "inbound_message_id": str(message.pk)},
            audit={"inbound_message_id": str(message.pk), "why": why, "text": message.body[:REASON_TEXT_MAX]},
        ) as change:
            now = timezone.now()
            details = {
                "reason": _reason(technician, message.body),
                "text": message.body,
                "why": why,
                "inbound_message_id": str(message.pk),
                "tech_id": str(technician.pk),
                "tech_name": technician.display_name,
                "ticket_state": change.ticket.state,
                "received_at": iso(message.received_at),
            }
            escalation, _created = Escalation.objects.get_or_create(
                ticket=change.ticket,
                kind=EscalationKind.TECHNICIAN_MESSAGE,
                trigger_key=trigger_key,
                defaults={"details": details, "created_at": now},
            )
            change.result = {"escalation_id": str(escalation.pk), "kind": escalation.kind}
            change.audit_payload.update(change.result)
    except DispatchError as exc:
        # The job moved on between the read and the lock: the text still waits for review.
        log.info("Technician text %s not put on ticket %s: %s", message.pk, ticket.pk, exc.code)
        return TechnicianReply(for_dispatcher=True, outcome=outcome)
    outcome.update({"ticket_ref": ticket.short_ref, "escalation_id": change.result["escalation_id"]})
    return TechnicianReply(ticket_id=ticket.pk, for_dispatcher=True, outcome=outcome)


def technician_reply_apply(*, result: Any) -> TechnicianReply | None:
    """Act on a technician's text as intake received it (IntakeResult: technician_id,
    acknowledgement, message, duplicate); None when it is not a technician's or was handled before.

    Runs inside the transaction that stored the message (message_receive's `then`).
    """
    technician_id = getattr(result, "technician_id", None)
    message = getattr(result, "message", None)
    if technician_id is None or message is None or getattr(result, "duplicate", False):
        return None
    technician = Technician.objects.select_related("user").filter(pk=technician_id, is_active=True).first()
    if technician is None:
        return None
    actor = technician_actor(technician, correlation_id=f"inbound:{message.pk}")
    if getattr(result, "acknowledgement", False):
        acknowledged = _acknowledge(technician=technician, actor=actor, message=message)
        if acknowledged is not None:
            return acknowledged
        reply = _to_dispatcher(
            technician=technician, actor=actor, message=message, why="An acknowledgement with no dispatch waiting."
        )
        _answer(
            phone=message.sender_phone,
            template=ACK_NOTHING_TEMPLATE,
            ticket=None,
            context={},
            outcome=reply.outcome,
        )
        return reply
    return _to_dispatcher(technician=technician, actor=actor, message=message, why="A text from the technician.")
