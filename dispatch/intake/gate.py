"""The blind-intake gate: what keeps a ticket opened by an agent's blind intake out of the
scheduling queue while the agent was unsure of the customer or the incident, or the SOP handoff
is still to be done; and who may override it (a dispatcher in person, never an agent).

Every path that would make such a ticket READY_TO_SCHEDULE asks here: the triage service
(`services.intake_triage`, which the API and the back office both call) and intake's own
triage of a ticket a customer's later message completes (receive.py).
"""

from __future__ import annotations

from dispatch.common.actors import Actor, ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import Ticket

from .confidence import classification_threshold, identity_threshold
from .models import BlindIntake
from .selectors import blind_intake_of

DEFAULT_SOP_HANDOFF_PROMPT = "SOP handoff: confirm onsite access and completion scope before scheduling."


def gate_refusals(
    ticket: Ticket, record: BlindIntake | None, *, sop_handoff_acknowledged: bool | None = None
) -> list[DispatchError]:
    """Every reason the gate keeps this ticket from READY_TO_SCHEDULE, in the order they are
    answered; none for a ticket that blind intake did not open."""
    if record is None:
        return []
    refusals = []
    identity_limit, classification_limit = identity_threshold(), classification_threshold()
    identity = ticket.identity_confidence if ticket.identity_confidence is not None else 0
    classification = ticket.classification_confidence if ticket.classification_confidence is not None else 0
    if identity < identity_limit:
        refusals.append(
            DispatchError(
                "LOW_IDENTITY_CONFIDENCE",
                "Identity confidence is below the threshold for scheduling; confirm who the customer is first.",
                status=409,
                dimension="identity",
                details={
                    "evidence": "identity_confidence_below_threshold",
                    "identity_confidence": identity,
                    "identity_threshold": identity_limit,
                },
            )
        )
    if classification < classification_limit:
        refusals.append(
            DispatchError(
                "LOW_CLASSIFICATION_CONFIDENCE",
                "Classification confidence is below the threshold for scheduling; confirm the incident type first.",
                status=409,
                dimension="identity",
                details={
                    "evidence": "classification_confidence_below_threshold",
                    "classification_confidence": classification,
                    "classification_threshold": classification_limit,
                },
            )
        )
    if record.sop_handoff_required and not record.sop_handoff_acknowledged and sop_handoff_acknowledged is not True:
        refusals.append(
            DispatchError(
                "SOP_HANDOFF_REQUIRED",
                "Acknowledge the SOP handoff before scheduling.",
                status=409,
                dimension="policy",
                details={
                    "evidence": "sop_handoff_acknowledgment_missing",
                    "sop_handoff_prompt": record.sop_handoff_prompt or DEFAULT_SOP_HANDOFF_PROMPT,
                    "identity_signature": record.identity_signature,
                },
            )
        )
    return refusals


def blind_intake_schedulable_check(ticket: Ticket, *, sop_handoff_acknowledged: bool | None = None) -> None:
    """Refuse to make a blind-intake ticket schedulable while the agent was unsure of the customer
    (LOW_IDENTITY_CONFIDENCE) or the incident (LOW_CLASSIFICATION_CONFIDENCE), or the SOP handoff
    it was parked for is still unacknowledged (SOP_HANDOFF_REQUIRED). Other tickets pass."""
    refusals = gate_refusals(ticket, blind_intake_of(ticket.id), sop_handoff_acknowledged=sop_handoff_acknowledged)
    if refusals:
        raise refusals[0]


def gate_override_allowed(actor: Actor) -> bool:
    """Only a dispatcher, in person, may take the gate's decision upon themselves; an agent may not."""
    return actor.actor_type == ActorType.HUMAN and actor.role == Role.DISPATCHER
