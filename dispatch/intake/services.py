"""Intake by an agent that already understood the customer: blind intake, and the gate that
keeps a low-confidence blind intake from reaching the scheduling queue.

Blind intake opens a ticket straight into TRIAGED, or READY_TO_SCHEDULE when the agent is
confident of who the customer is and what the incident is and the SOP handoff was done; what it
reported is kept in a BlindIntake row. A second intake of the same customer, site and incident
within the duplicate window is refused with DUPLICATE_INTAKE naming the ticket already open.

`intake_triage` is ticket.triage for every face (the API and the back office): to
READY_TO_SCHEDULE, a blind-intake ticket must pass the gate (gate.py) — refused while the agent
was unsure (LOW_IDENTITY_CONFIDENCE, LOW_CLASSIFICATION_CONFIDENCE) or the SOP handoff is
unacknowledged (SOP_HANDOFF_REQUIRED). A dispatcher in person may override it with a reason,
recorded in the triage's audit event; an agent may not.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import DispatchError, invalid_request, not_found
from dispatch.common.money import cents_value
from dispatch.common.parsing import email_parse, uuid_parse
from dispatch.tickets.commands import command
from dispatch.tickets.models import Priority, Site, Ticket
from dispatch.tickets.policy import role_refusal, scope_refusal
from dispatch.tickets.selectors import iso_utc
from dispatch.tickets.services import Outcome, TicketChange, ticket_opening, ticket_triage
from dispatch.tickets.states import TERMINAL_STATES, TicketState

from .confidence import classification_threshold, identity_threshold
from .gate import (  # noqa: F401  (blind_intake_schedulable_check: part of the app's service surface)
    DEFAULT_SOP_HANDOFF_PROMPT,
    blind_intake_schedulable_check,
    gate_override_allowed,
    gate_refusals,
)
from .models import BlindIntake
from .selectors import blind_intake_of

BLIND_INTAKE = command("ticket.blind_intake", ["dispatcher", "agent"], None, None, "Blind intake")

DEFAULT_DUPLICATE_WINDOW_MINUTES = 120
PHONE_REGION = "US"


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


def _required_text(value: Any, field: str, *, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_request(f"{field!r} is required.", field=field)
    text = value.strip()
    if max_length is not None and len(text) > max_length:
        raise invalid_request(f"{field!r} is longer than {max_length} characters.", field=field)
    return text


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


def identity_signature(
    *, account_id, site_id, incident_type: str, summary: str, customer_name: str, phone: str | None, email: str | None
) -> str:
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


def blind_intake_facts(record: BlindIntake) -> dict:
    """What blind intake judged, as the tool answers it and its audit event records it."""
    ready = not record.readiness_reasons
    return {
        "state_recommendation": (TicketState.READY_TO_SCHEDULE if ready else TicketState.TRIAGED).value,
        "readiness": {"ready": ready, "readiness_reasons": list(record.readiness_reasons)},
        "policy": {
            "identity_confidence_threshold": record.identity_threshold,
            "classification_confidence_threshold": record.classification_threshold,
        },
        "identity_signature": record.identity_signature,
        "sop_handoff_required": record.sop_handoff_required,
        "sop_handoff_acknowledged": record.sop_handoff_acknowledged,
        "sop_handoff_prompt": record.sop_handoff_prompt or None,
    }


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
    request: dict | None = None,
) -> Outcome:
    """Open a ticket from an agent's intake: TRIAGED, or READY_TO_SCHEDULE when it is confident."""
    # Refuse a caller without the role before reading anything, so a refusal reveals nothing.
    refusal = role_refusal(BLIND_INTAKE, actor.role)
    if refusal:
        raise refusal
    account_key = uuid_parse(account_id, field="account_id")
    site_key = uuid_parse(site_id, field="site_id")
    summary = _required_text(summary, "summary", max_length=500)
    incident_type = _required_text(incident_type, "incident_type", max_length=64).upper()
    customer_name = _required_text(customer_name, "customer_name", max_length=200)
    if not isinstance(priority, str) or priority.strip().upper() not in Priority.values:
        raise invalid_request("'priority' must be EMERGENCY, URGENT or ROUTINE.", field="priority")
    priority = priority.strip().upper()
    identity = _confidence(identity_confidence, "identity_confidence")
    classification = _confidence(classification_confidence, "classification_confidence")
    phone = phone_e164(contact_phone)
    email = email_parse(contact_email, field="contact_email")
    if phone is None and email is None:
        raise DispatchError(
            "BLIND_INTAKE_VALIDATION_FAILED",
            "Give 'contact_phone' or 'contact_email': a blind intake needs a way to reach the customer.",
            status=400,
            dimension="identity",
            details={"missing_contact_channel": True},
        )
    nte = cents_value(nte_cents, "nte_cents")
    acknowledged = _optional_bool(sop_handoff_acknowledged, "sop_handoff_acknowledged")
    if sop_handoff_prompt is not None and not (isinstance(sop_handoff_prompt, str) and sop_handoff_prompt.strip()):
        raise invalid_request("'sop_handoff_prompt' must be a non-empty string.", field="sop_handoff_prompt")
    if description is not None and not isinstance(description, str):
        raise invalid_request("'description' must be text.", field="description")

    record = BlindIntake(
        identity_confidence=identity,
        classification_confidence=classification,
        identity_threshold=identity_threshold(),
        classification_threshold=classification_threshold(),
        sop_handoff_acknowledged=acknowledged is True,
        identity_signature=identity_signature(
            account_id=account_key,
            site_id=site_key,
            incident_type=incident_type,
            summary=summary,
            customer_name=customer_name,
            phone=phone,
            email=email,
        ),
    )
    reasons = []
    if identity < record.identity_threshold:
        reasons.append("IDENTITY_CONFIDENCE")
    if classification < record.classification_threshold:
        reasons.append("CLASSIFICATION_CONFIDENCE")
    # An explicit false means the SOP handoff has not been done; a caller whose flow has no
    # handoff step leaves it out and is judged on confidence alone.
    if acknowledged is False:
        reasons.append("SOP_HANDOFF_REQUIRED")
    record.readiness_reasons = reasons
    record.sop_handoff_required = bool(reasons)
    if reasons:
        record.sop_handoff_prompt = sop_handoff_prompt.strip() if sop_handoff_prompt else DEFAULT_SOP_HANDOFF_PROMPT
    facts = blind_intake_facts(record)

    with transaction.atomic():
        # Locking the site row serialises intakes for one site, so two identical intakes racing
        # each other cannot both pass the duplicate check below before either has inserted.
        site = Site.objects.select_for_update().filter(pk=site_key).first()
        if site is None:
            raise not_found("SITE_NOT_FOUND", f"No site {site_key}.")
        if site.account_id != account_key:
            raise invalid_request("The site does not belong to that account.", field="site_id")
        # Scope before the duplicate check, whose answer would name another account's ticket.
        refusal = scope_refusal(actor, account_id=site.account_id, site_id=site.id)
        if refusal:
            raise refusal
        existing = _duplicate_of(
            site=site, incident_type=incident_type, customer_name=customer_name, phone=phone, email=email
        )
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
                    "identity_signature": record.identity_signature,
                },
            )
        ticket = Ticket(
            account_id=site.account_id,
            site=site,
            state=TicketState.READY_TO_SCHEDULE if not reasons else TicketState.TRIAGED,
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
        audit = {
            "account_id": str(site.account_id),
            "site_id": str(site.id),
            "summary": summary,
            "incident_type": incident_type,
            "priority": priority,
            "customer_name": customer_name,
            "contact_phone": phone,
            "contact_email": email,
            "nte_cents": nte,
            "identity_confidence": identity,
            "classification_confidence": classification,
            **facts,
        }
        with ticket_opening(actor=actor, command=BLIND_INTAKE, ticket=ticket, request=request, audit=audit) as change:
            change.result = facts
        # The ticket row exists once the block has ended; its intake record commits with it.
        record.ticket = change.ticket
        record.save(force_insert=True)
    return change.outcome


# --- Triage, through the gate -------------------------------------------------------------------


def intake_triage(
    *,
    actor: Actor,
    ticket_id,
    priority: str,
    incident_type: str,
    nte_cents: int | None = None,
    outcome: str = TicketState.TRIAGED,
    approval_reason: str = "",
    approval_amount_delta_cents: int | None = None,
    sop_handoff_acknowledged: bool | None = None,
    gate_override: bool = False,
    override_reason: str = "",
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """ticket.triage with the blind-intake gate: READY_TO_SCHEDULE only for a confident intake,
    unless a dispatcher overrides the gate with a reason."""
    acknowledged = _optional_bool(sop_handoff_acknowledged, "sop_handoff_acknowledged")
    override = _optional_bool(gate_override, "gate_override") or False
    reason = override_reason.strip() if isinstance(override_reason, str) else ""
    if override and not reason:
        raise invalid_request("Say why the gate is overridden.", field="override_reason")

    def gate(change: TicketChange) -> None:
        # Asked by ticket_triage under the ticket's row lock, after role, scope, version and state:
        # the gate's answer never reveals anything to a caller the executor would turn away, and
        # the intake record (changed only under the same lock) is the one the triage acts on.
        record = blind_intake_of(change.ticket.id)
        refusals = gate_refusals(change.ticket, record, sop_handoff_acknowledged=acknowledged)
        if not refusals:
            if acknowledged and record is not None and not record.sop_handoff_acknowledged:
                # The handoff is done: the record says so, and a later triage need not repeat it.
                record.sop_handoff_acknowledged = True
                record.save(update_fields=["sop_handoff_acknowledged"])
            return
        if not override:
            raise refusals[0]
        if not gate_override_allowed(change.actor):
            refusals[0].details["override_refused"] = "Only a dispatcher, in person, may override this gate."
            raise refusals[0]
        change.audit_payload["gate_override"] = {"codes": [r.code for r in refusals], "reason": reason}

    return ticket_triage(
        actor=actor,
        ticket_id=ticket_id,
        priority=priority,
        incident_type=incident_type,
        nte_cents=nte_cents,
        outcome=outcome,
        approval_reason=approval_reason,
        approval_amount_delta_cents=approval_amount_delta_cents,
        request=request,
        gate=gate if outcome == TicketState.READY_TO_SCHEDULE else None,
        expected_version=expected_version,
    )


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
from .technician_messages import technician_message_settle  # noqa: E402,F401
