"""The technician's job packet: everything needed on site, and what completion will say now."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone

from dispatch.closeout.gate import CloseoutGate, closeout_requirements, template_for
from dispatch.closeout.selectors import autonomy_pause_effective, completion_latest, evidence_list
from dispatch.common.actors import Actor, ActorType
from dispatch.common.roles import Role
from dispatch.tickets import policy
from dispatch.tickets.models import Contact, Ticket
from dispatch.tickets.selectors import (
    actor_summary,
    allowed_tools,
    iso_utc,
    policy_error,
    sla_snapshot,
    str_or_none,
    ticket_actions,
    timeline_events,
    tools_by_name,
)

PACKET_TIMELINE_EVENTS = 10

# The actions the packet offers, by their tools' names (the contract's, and the toolset's own).
TECH_PACKET_ACTIONS = (
    ("check_in", "tech.check_in"),
    ("pause_work", "tech.pause"),
    ("resume_work", "tech.resume"),
    ("add_evidence", "closeout.add_evidence"),
    ("add_labor", "closeout.add_labor"),
    ("add_part", "closeout.add_part"),
    ("save_checklist", "closeout.save_checklist"),
    ("request_change", "tech.request_change"),
    ("candidate", "closeout.candidate"),
    ("complete_work", "tech.complete"),
    ("open_timeline", "ticket.timeline"),
    ("open_evidence", "closeout.list_evidence"),
)
CLOSEOUT_TOOLS = ("tech.complete", "closeout.candidate")


def _evidence_refusal(gate: CloseoutGate) -> dict | None:
    """Completion's refusal for the evidence on file, in the gate's own words and precedence.
    The checklist is left out: the technician answers it in the completion call itself, so it
    cannot block the action yet."""
    evidence_only = dataclasses.replace(gate, missing_checklist_keys=[])
    problems = evidence_only.problems
    if not problems:
        return None
    return policy.refusal_as_dict(dataclasses.replace(evidence_only, code=problems[0]).error())


def _autonomy_refusal(pause) -> dict | None:
    if pause is None:
        return None
    scope_type = getattr(pause, "scope_type", "GLOBAL")
    scope_id = {
        "TICKET": str_or_none(getattr(pause, "ticket_id", None)),
        "INCIDENT": getattr(pause, "incident_type", None) or None,
    }.get(scope_type, "GLOBAL")
    return policy_error(
        "AUTONOMY_DISABLED",
        "Autonomy is paused for this ticket context.",
        "policy",
        scope_type=scope_type,
        scope_id=scope_id,
        reason=getattr(pause, "reason", "") or None,
    )


def _completion_refusals(actor: Actor, ticket: Ticket, gate: CloseoutGate, pause, template) -> dict[str, dict]:
    """Why tech.complete and closeout.candidate would be refused now, beyond role, scope and state."""
    evidence_refusal = _evidence_refusal(gate)
    if evidence_refusal is not None:
        return dict.fromkeys(CLOSEOUT_TOOLS, evidence_refusal)
    refusals: dict[str, dict] = {}
    if pause is not None and (actor.role == Role.AGENT or actor.actor_type == ActorType.AGENT):
        # A pause stops machines, not people: an AI caller is refused whatever role it holds.
        refusals = {tool: _autonomy_refusal(pause) for tool in CLOSEOUT_TOOLS}
    if "closeout.candidate" not in refusals and template is not None and template.high_risk:
        refusals["closeout.candidate"] = policy_error(
            "MANUAL_REVIEW_REQUIRED",
            "This incident type is high-risk: a person reviews its closeout (use tech.complete).",
            "policy",
            requirement_code="AUTOMATION_RISK_BLOCK",
            incident_type=ticket.incident_type,
        )
    return refusals


def _checklist_source(completion) -> str:
    """Where the checked items come from: answers saved on the way, or a completion attempt."""
    if completion is None:
        return "none_recorded"
    return "saved_answers" if completion.tool == "closeout.save_checklist" else "latest_completion_attempt"


def tech_job_packet(*, actor: Actor, ticket: Ticket, commands: Iterable[Any], now: datetime | None = None) -> dict:
    """What a technician needs on site: site and access, contact, scope, NTE, asset, the
    template's evidence and checklist keys, evidence on file and what is missing, the latest
    timeline and the actions allowed now (with the reason for each one that is not).

    The closeout gate is evaluated against the latest completion submission's checklist, so the
    packet says what completion says.
    """
    now = now or timezone.now()
    commands = tools_by_name(commands)
    policy.access_check(actor, ticket)
    ticket = Ticket.objects.select_related("site", "asset", "assigned_tech").get(pk=ticket.pk)
    site = ticket.site
    contact = Contact.objects.filter(site_id=site.id).order_by("-is_authorized_requester", "created_at", "pk").first()
    template = template_for(ticket.incident_type)
    evidence = evidence_list(ticket)["evidence"]
    events = timeline_events(ticket.id)
    completion = completion_latest(ticket.id)
    answered = completion.checklist_status if completion else None
    checklist_status = answered if isinstance(answered, dict) else {}
    no_signature_reason = (completion.no_signature_reason if completion else "") or None
    gate = closeout_requirements(
        ticket=ticket, checklist_status=checklist_status, no_signature_reason=no_signature_reason, evidence_refs=None
    )
    pause = autonomy_pause_effective(ticket)
    refusals = _completion_refusals(actor, ticket, gate, pause, template)

    missing_evidence = list(gate.missing_evidence_keys)
    required_keys = list(template.required_evidence_keys) if template else []
    # The door code goes only to the technician on the job and to dispatch.
    sees_access_code = actor.role == Role.DISPATCHER or (
        actor.role == Role.TECHNICIAN and policy.assignment_refusal(actor, ticket) is None
    )
    asset = ticket.asset
    tech = ticket.assigned_tech
    return {
        "generated_at": iso_utc(now),
        "actor": actor_summary(actor),
        "packet": {
            "header": {
                "ticket_id": str(ticket.id),
                "reference": ticket.short_ref,
                "priority": ticket.priority,
                "incident_type": ticket.incident_type or None,
                "current_state": str(ticket.state),
                "version": ticket.version,
                "scheduled_window": {"start": iso_utc(ticket.scheduled_start), "end": iso_utc(ticket.scheduled_end)},
                "assigned_tech_id": str_or_none(ticket.assigned_tech_id),
                "assigned_tech_name": tech.display_name if tech else None,
                **sla_snapshot(ticket, now),
            },
            "site_and_access": {
                "site_id": str(site.id),
                "site_name": site.name,
                "address": {
                    "address1": site.address_line1,
                    "address2": site.address_line2 or None,
                    "city": site.city,
                    "region": site.region or None,
                    "postal_code": site.postal_code or None,
                    "country": site.country,
                    "formatted": site.address,
                },
                "lat": None if site.lat is None else float(site.lat),
                "lng": None if site.lng is None else float(site.lng),
                "timezone": site.timezone,
                "hours": site.hours or None,
                "access_instructions": site.access_instructions or None,
                "access_code": (site.access_code or None) if sees_access_code else None,
                "onsite_contact": (
                    {"name": contact.name, "phone": contact.phone or None, "email": contact.email or None}
                    if contact
                    else None
                ),
            },
            "customer": {
                "name": ticket.customer_name or None,
                "phone": ticket.customer_phone or None,
                "email": ticket.customer_email or None,
            },
            "work_scope": {
                "summary": ticket.summary,
                "customer_description": ticket.description or None,
                "nte_cents": ticket.nte_cents,
                "currency": ticket.currency,
            },
            "asset": (
                {
                    "id": str(asset.id),
                    "name": asset.name,
                    "make": asset.make or None,
                    "model": asset.model or None,
                    "serial": asset.serial or None,
                    "warranty_until": asset.warranty_until.isoformat() if asset.warranty_until else None,
                }
                if asset
                else None
            ),
            "evidence_requirements": {
                "template_version": template.version if template else None,
                "high_risk": bool(template and template.high_risk),
                "required_evidence": [{"key": key, "present": key not in missing_evidence} for key in required_keys],
                "missing_evidence_keys": missing_evidence,
                "evidence_items": evidence,
            },
            "checklist": {
                "required_items": [
                    {"key": key, "checked": checklist_status.get(key) is True}
                    for key in (template.required_checklist_keys if template else [])
                ],
                "source": _checklist_source(completion),
            },
            "closeout_gate": gate.as_dict(),
            "autonomy": {"paused": pause is not None, "policy_error": _autonomy_refusal(pause)},
            "timeline": {"latest_events": events[-PACKET_TIMELINE_EVENTS:], "total_events": len(events)},
            "actions": ticket_actions(
                actor=actor, ticket=ticket, commands=commands, blueprint=TECH_PACKET_ACTIONS, extra_refusals=refusals
            ),
            "allowed_tools": allowed_tools(actor=actor, ticket=ticket, commands=commands),
        },
    }
