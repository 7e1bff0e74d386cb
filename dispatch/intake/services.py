"""Intake by an agent that already understood the customer: blind intake, and the gate that
keeps a low-confidence blind intake from reaching the scheduling queue.

Blind intake opens a ticket straight into TRIAGED, or READY_TO_SCHEDULE when the agent is
confident of who the customer is and what the incident is and the SOP handoff was done. A
second intake of the same customer, site and incident within the duplicate window is refused
with DUPLICATE_INTAKE naming the ticket already open.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.money import cents_value
from dispatch.tickets.commands import command
from dispatch.tickets.models import AuditEvent, Priority, Site, Ticket
from dispatch.tickets.selectors import iso_utc
from dispatch.tickets.policy import access_check
from dispatch.tickets.services import (
    TICKET_TRIAGE,
    Outcome,
    invalid_transition,
    role_forbidden,
    ticket_not_found,
    ticket_open,
    ticket_triage,
)
from dispatch.tickets.states import TERMINAL_STATES, TicketState

S = TicketState

BLIND_INTAKE = command("ticket.blind_intake", ["dispatcher", "agent"], None, None, "Blind intake")

DEFAULT_CONFIDENCE_THRESHOLD = 85
DEFAULT_DUPLICATE_WINDOW_MINUTES = 120
DEFAULT_SOP_HANDOFF_PROMPT = "SOP handoff: confirm onsite access and completion scope before scheduling."
PHONE_REGION = "US"


def _identity_threshold() -> int:
    return int(getattr(settings, "DISPATCH_INTAKE_IDENTITY_CONFIDENCE_THRESHOLD", DEFAULT_CONFIDENCE_THRESHOLD))


def _classification_threshold() -> int:
    return int(getattr(settings, "DISPATCH_INTAKE_CLASSIFICATION_CONFIDENCE_THRESHOLD", DEFAULT_CONFIDENCE_THRESHOLD))


def _duplicate_window_minutes() -> int:
    return int(getattr(settings, "DISPATCH_INTAKE_DUPLICATE_WINDOW_MINUTES", DEFAULT_DUPLICATE_WINDOW_MINUTES))


def phone_e164(value: Any, *, field: str = "contact_phone") -> str | None:
    """A phone number in E.164 (US numbers may omit +1), None when absent; 400 when not a real number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{field!r} must be a phone number.", field=field)
    try:
        number = phonenumbers.parse(value.strip(), PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise invalid_request(f"{field!r} is not a phone number.", field=field) from None
    if not phonenumbers.is_valid_number(number):
        raise invalid_request(f"{field!r} is not a valid phone number.", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: Any, *, field: str = "contact_email") -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{field!r} must be an email address.", field=field)
    address = value.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise invalid_request(f"{field!r} is not a valid email address.", field=field) from None
    return address


def _required_text(value: Any, field: str, *, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_request(f"{field!r} is required.", field=field)
    text = value.strip()
    if max_length is not None and len(text) > max_length:
        raise invalid_request(f"{field!r} is longer than {max_length} characters.", field=field)
    return text


def _uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise invalid_request(f"{field!r} must be a UUID.", field=field) from None


def _confidence(value: Any, field: str) -> int:
    # bool is an int in Python; a JSON true is not a confidence.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise invalid_request(f"{field!r} must be a number from 0 to 100.", field=field)
    if value < 0 or value > 100:
        raise invalid_request(f"{field!r} must be a number from 0 to 100.", field=field)
    return int(value)


def _optional_bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise invalid_request(f"{field!r} must be true or false.", field=field)


def _nte(value: Any) -> int | None:
    return cents_value(value, "nte_cents")


def identity_signature(*, account_id, site_id, incident_type: str, summary: str, customer_name: str,
                       phone: str | None, email: str | None) -> str:
    """A stable fingerprint of who reported what where (the contract's identity_signature)."""
    body = json.dumps(
        {
            "account_id": str(account_id).lower(),
            "site_id": str(site_id).lower(),
            "incident_type": incident_type.upper(),
            "summary": summary.lower(),
            "customer_name": customer_name.lower(),
            "contact_phone": phone,
            "contact_email": email,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _duplicate_of(*, site: Site, incident_type: str, customer_name: str, phone: str | None, email: str | None):
    """The open ticket this intake repeats, if any (served by the ticket_site_incident index)."""
    same_customer = Q(customer_name__iexact=customer_name)
    if phone:
        same_customer |= Q(customer_phone=phone)
    if email:
        same_customer |= Q(customer_email__iexact=email)
    since = timezone.now() - timedelta(minutes=_duplicate_window_minutes())
    return (
        Ticket.objects.filter(site_id=site.id, incident_type=incident_type, created_at__gte=since)
        .exclude(state__in=[s.value for s in TERMINAL_STATES])
        .filter(same_customer)
        .order_by("-created_at", "-id")
        .only("id", "state", "created_at")
        .first()
    )


def ticket_blind_intake(
    *,
    actor: Actor,
    account_id,
    site_id,
    summary: str,
    incident_type: str,
    customer_name: str,
    priority: str,
    identity_confidence,
    classification_confidence,
    contact_phone: str | None = None,
    contact_email: str | None = None,
    description: str = "",
    nte_cents=None,
    sop_handoff_acknowledged: bool | None = None,
    sop_handoff_prompt: str | None = None,
    payload: dict | None = None,
) -> Outcome:
    """Open a ticket from an agent's intake: TRIAGED, or READY_TO_SCHEDULE when it is confident."""
    # Refuse a caller without the role before reading anything, so a refusal reveals nothing.
    if not BLIND_INTAKE.allows_role(actor.role):
        raise role_forbidden(BLIND_INTAKE, actor.role)
    account_key = _uuid(account_id, "account_id")
    site_key = _uuid(site_id, "site_id")
    summary = _required_text(summary, "summary", max_length=500)
    incident_type = _required_text(incident_type, "incident_type", max_length=64).upper()
    customer_name = _required_text(customer_name, "customer_name", max_length=200)
    if not isinstance(priority, str) or priority.strip().upper() not in Priority.values:
        raise invalid_request("'priority' must be EMERGENCY, URGENT or ROUTINE.", field="priority")
    priority = priority.strip().upper()
    identity = _confidence(identity_confidence, "identity_confidence")
    classification = _confidence(classification_confidence, "classification_confidence")
    phone = phone_e164(contact_phone)
    email = _email(contact_email)
    if phone is None and email is None:
        raise DispatchError(
            "BLIND_INTAKE_VALIDATION_FAILED",
            "Give 'contact_phone' or 'contact_email': a blind intake needs a way to reach the customer.",
            status=400,
            dimension="identity",
            details={"missing_contact_channel": True},
        )
    nte = _nte(nte_cents)
    acknowledged = _optional_bool(sop_handoff_acknowledged, "sop_handoff_acknowledged")
    if sop_handoff_prompt is not None and not (isinstance(sop_handoff_prompt, str) and sop_handoff_prompt.strip()):
        raise invalid_request("'sop_handoff_prompt' must be a non-empty string.", field="sop_handoff_prompt")
    if description is not None and not isinstance(description, str):
        raise invalid_request("'description' must be text.", field="description")

    thresholds = {
        "identity_confidence_threshold": _identity_threshold(),
        "classification_confidence_threshold": _classification_threshold(),
    }
    reasons = []
    if identity < thresholds["identity_confidence_threshold"]:
        reasons.append("IDENTITY_CONFIDENCE")
    if classification < thresholds["classification_confidence_threshold"]:
        reasons.append("CLASSIFICATION_CONFIDENCE")
    # An explicit false means the SOP handoff has not been done; a caller whose flow has no
    # handoff step leaves it out and is judged on confidence alone.
    if acknowledged is False:
        reasons.append("SOP_HANDOFF_REQUIRED")
    state = S.TRIAGED if reasons else S.READY_TO_SCHEDULE
    prompt = (sop_handoff_prompt.strip() if sop_handoff_prompt else DEFAULT_SOP_HANDOFF_PROMPT) if reasons else None
    signature = identity_signature(
        account_id=account_key, site_id=site_key, incident_type=incident_type, summary=summary,
        customer_name=customer_name, phone=phone, email=email,
    )
    intake = {
        "state_recommendation": state.value,
        "readiness": {"ready": not reasons, "readiness_reasons": reasons},
        "policy": thresholds,
        "identity_signature": signature,
        "sop_handoff_required": bool(reasons),
        "sop_handoff_acknowledged": acknowledged is True,
        "sop_handoff_prompt": prompt,
    }

    with transaction.atomic():
        # Locking the site row serialises intakes for one site, so two identical intakes racing
        # each other cannot both pass the duplicate check below before either has inserted.
        site = Site.objects.select_for_update().filter(pk=site_key).first()
        if site is None:
            raise DispatchError("SITE_NOT_FOUND", f"No site {site_key}.", status=404, dimension="request")
        if site.account_id != account_key:
            raise invalid_request("The site does not belong to that account.", field="site_id")
        if not actor.in_scope(account_id=site.account_id, site_id=site.id):
            raise DispatchError(
                "FORBIDDEN_SCOPE", "This credential is not scoped to that account or site.", status=403, dimension="scope"
            )
        existing = _duplicate_of(site=site, incident_type=incident_type, customer_name=customer_name, phone=phone, email=email)
        if existing is not None:
            raise DispatchError(
                "DUPLICATE_INTAKE",
                f"This looks like ticket {existing.id}, opened for the same customer, site and incident "
                f"within {_duplicate_window_minutes()} minutes.",
                status=409,
                dimension="identity",
                details={
                    "duplicate_ticket_id": str(existing.id),
                    "duplicate_ticket_state": str(existing.state),
                    "duplicate_created_at": iso_utc(existing.created_at),
                    "duplicate_within_minutes": _duplicate_window_minutes(),
                    "identity_signature": signature,
                },
            )
        ticket = Ticket(
            account_id=site.account_id,
            site=site,
            state=state,
            priority=priority,
            incident_type=incident_type,
            summary=summary,
            description=(description or "").strip(),
            customer_name=customer_name,
            customer_phone=phone or "",
            customer_email=email or "",
            nte_cents=nte,
            identity_confidence=identity,
            classification_confidence=classification,
        )
        request = payload if payload is not None else {
            "account_id": str(account_key), "site_id": str(site_key), "summary": summary,
            "incident_type": incident_type, "customer_name": customer_name, "priority": priority,
            "identity_confidence": identity_confidence, "classification_confidence": classification_confidence,
            "contact_phone": contact_phone, "contact_email": contact_email, "description": description,
            "nte_cents": nte_cents, "sop_handoff_acknowledged": sop_handoff_acknowledged,
        }
        outcome = ticket_open(
            actor=actor, command=BLIND_INTAKE, ticket=ticket, payload={"request": request, **intake},
        )
    return Outcome(ticket=outcome.ticket, event=outcome.event, result=intake)


def _intake_record(ticket: Ticket) -> dict | None:
    """What blind intake recorded about this ticket, or None for a ticket opened another way."""
    event = (
        AuditEvent.objects.filter(ticket_id=ticket.id, tool_name=BLIND_INTAKE.tool)
        .order_by("seq")
        .values("payload")
        .first()
    )
    return None if event is None else (event["payload"] or {})


def blind_intake_schedulable_check(ticket: Ticket, *, sop_handoff_acknowledged: bool | None = None) -> None:
    """Refuse to make a blind-intake ticket schedulable while the agent was unsure of the customer
    (LOW_IDENTITY_CONFIDENCE) or the incident (LOW_CLASSIFICATION_CONFIDENCE), or the SOP handoff
    it was parked for is still unacknowledged (SOP_HANDOFF_REQUIRED). Other tickets pass."""
    record = _intake_record(ticket)
    if record is None:
        return
    identity_threshold = _identity_threshold()
    classification_threshold = _classification_threshold()
    identity = ticket.identity_confidence if ticket.identity_confidence is not None else 0
    classification = ticket.classification_confidence if ticket.classification_confidence is not None else 0
    if identity < identity_threshold:
        raise DispatchError(
            "LOW_IDENTITY_CONFIDENCE",
            "Identity confidence is below the threshold for scheduling; confirm who the customer is first.",
            status=409,
            dimension="identity",
            details={
                "evidence": "identity_confidence_below_threshold",
                "identity_confidence": identity,
                "identity_threshold": identity_threshold,
            },
        )
    if classification < classification_threshold:
        raise DispatchError(
            "LOW_CLASSIFICATION_CONFIDENCE",
            "Classification confidence is below the threshold for scheduling; confirm the incident type first.",
            status=409,
            dimension="identity",
            details={
                "evidence": "classification_confidence_below_threshold",
                "classification_confidence": classification,
                "classification_threshold": classification_threshold,
            },
        )
    if record.get("sop_handoff_required") and not record.get("sop_handoff_acknowledged") and sop_handoff_acknowledged is not True:
        raise DispatchError(
            "SOP_HANDOFF_REQUIRED",
            "Acknowledge the SOP handoff before scheduling.",
            status=409,
            dimension="policy",
            details={
                "evidence": "sop_handoff_acknowledgment_missing",
                "sop_handoff_prompt": record.get("sop_handoff_prompt") or DEFAULT_SOP_HANDOFF_PROMPT,
                "identity_signature": record.get("identity_signature"),
            },
        )


def intake_triage(
    *,
    actor: Actor,
    ticket_id,
    priority: str,
    incident_type: str,
    nte_cents: int | None = None,
    outcome: str = S.TRIAGED,
    approval_reason: str = "",
    approval_amount_delta_cents: int | None = None,
    sop_handoff_acknowledged: bool | None = None,
    payload: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """ticket.triage with the blind-intake gate: READY_TO_SCHEDULE only for a confident intake."""

    def triage() -> Outcome:
        return ticket_triage(
            actor=actor,
            ticket_id=ticket_id,
            priority=priority,
            incident_type=incident_type,
            nte_cents=nte_cents,
            outcome=outcome,
            approval_reason=approval_reason,
            approval_amount_delta_cents=approval_amount_delta_cents,
            request=payload,
            expected_version=expected_version,
        )

    if outcome != S.READY_TO_SCHEDULE:
        return triage()
    acknowledged = _optional_bool(sop_handoff_acknowledged, "sop_handoff_acknowledged")
    # Role, scope and state first, in the executor's order, so the gate's answer never reveals
    # anything to a caller the executor would have turned away.
    if not TICKET_TRIAGE.allows_role(actor.role):
        raise role_forbidden(TICKET_TRIAGE, actor.role)
    with transaction.atomic():
        try:
            # The row lock the executor takes next is taken here already, so the ticket checked
            # is the ticket triaged.
            ticket = Ticket.objects.select_for_update().get(pk=_uuid(ticket_id, "ticket_id"))
        except (Ticket.DoesNotExist, DispatchError):
            raise ticket_not_found(ticket_id) from None
        access_check(actor, ticket)
        if not TICKET_TRIAGE.allows_state(ticket.state):
            raise invalid_transition(ticket.state, TICKET_TRIAGE.resulting_state, tool=TICKET_TRIAGE.tool)
        blind_intake_schedulable_check(ticket, sop_handoff_acknowledged=acknowledged)
        return triage()


# --- Customers' messages -----------------------------------------------------------------------
# SMS, email, the web form and agents' hand-overs all come in through `message_receive`; the
# implementation lives in receive.py and is re-exported here, the app's one services module.

from .receive import (  # noqa: E402,F401
    INTAKE_RECEIVE,
    INTAKE_REVIEW,
    INTAKE_UPDATE,
    IntakeResult,
    intake_ticket_update,
    message_receive,
    message_review_clear,
    missing_items,
    question_text,
)
