"""Customers' messages: every channel (SMS, email, the web form, an agent's hand-over) comes in
through `message_receive`.

One message, one transaction: the message is stored (the (channel, provider id) unique
constraint makes a retried delivery the same message), sanitized and flagged, threaded onto
the sender's open ticket when it is about that ticket (never another customer's: see
conversations.py) or given a new one, read for facts (stored with their confidence and
source), and answered: a confirmation with the reference and the status link for a new
ticket, one short question for whatever is still missing. A message can only open a ticket or
add to one; it never schedules, dispatches, cancels or closes anything. The one thing a
customer's message may answer, a "1/2/3" choice of proposed times, is reported in the result
for the scheduling face to act on; nothing here acts on it.

An SMS from one of our technicians' phones is stored the same way but is no customer's: it
opens and threads nothing and answers nothing, and waits for a dispatcher's review unless the
face that received it acts on it (technician_messages.py).

`dispatch.intake.services` re-exports the public names; callers import them from there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dispatch.common.actors import Actor, service_actor
from dispatch.common.errors import DispatchError, invalid_request
from dispatch.common.languages import ENGLISH, SPANISH, language_clean
from dispatch.common.parsing import email_parse, uuid_parse
from dispatch.messaging.models import MessageTemplate
from dispatch.messaging.rendering import template_render
from dispatch.messaging.selectors import message_template, message_templates
from dispatch.messaging.services import outbox_enqueue
from dispatch.tickets import catalog
from dispatch.tickets.commands import command
from dispatch.tickets.models import Account, Priority, Site, Ticket
from dispatch.tickets.policy import role_refusal
from dispatch.tickets.services import (
    Outcome,
    TicketChange,
    audit_only,
    ticket_change,
    ticket_opening,
    ticket_request_info,
    ticket_triage,
)
from dispatch.tickets.states import TicketState

from . import conversations, extract, llm, model_reading, sanitize, service_area
from .confidence import classification_threshold, identity_threshold
from .gate import gate_refusals
from .models import ExtractedField, InboundChannel, InboundMessage
from .selectors import blind_intake_of
from .status_links import status_link
from .technician_messages import acknowledgement_read, technician_flag, technician_for_phone

INTAKE_RECEIVE = command(
    "intake.receive", ["dispatcher", "agent"], None, "NEW", "Open a ticket from a customer's message"
)
INTAKE_UPDATE = command(
    "intake.update",
    ["dispatcher", "agent"],
    ["NEW", "NEEDS_INFO", "TRIAGED"],
    None,
    "Record what a customer's message told us",
)

# States in which a customer's bare "2" answers a proposal of appointment times.
REPLY_STATES = frozenset({TicketState.SCHEDULE_PROPOSED, TicketState.PENDING_CUSTOMER_CONFIRMATION})
# States in which intake still completes the ticket from what the customer writes.
INTAKE_STATES = frozenset({TicketState.NEW, TicketState.NEEDS_INFO, TicketState.TRIAGED})
# An item still missing after this many questions is left to a dispatcher (no endless asking).
MAX_ASKS_PER_ITEM = 2
PROVIDER_ID_MAX = 255
PRIORITY_RANK = {Priority.ROUTINE: 0, Priority.URGENT: 1, Priority.EMERGENCY: 2}

# What to ask for each missing item, per language, as a phrase that completes "Could you reply
# with ...?" ("¿Nos puede indicar ...?"). Spanish is written without the accented vowels an
# SMS would turn into UCS-2, as the Spanish message templates are.
QUESTION_PHRASES = {
    ENGLISH: {
        "address": "the street address of the door (number, street and city)",
        "city": "the city or ZIP code of {line1}",
        "problem": "a few words on what is wrong with the door (for example: won't latch, won't lock, "
        "broken glass, slamming, automatic door stuck)",
        "contact": "a phone number or email address where we can reach you",
        "site_choice": "which address the door is at ({sites}) or another address",
        "access": "how our technician gets to the door (who to ask for, a gate or door code, opening hours)",
        "time_window": "the days and times someone will be there (for example: weekdays after 2pm, Saturday morning)",
    },
    SPANISH: {
        "address": "la direccion de la puerta (numero, calle y ciudad)",
        "city": "la ciudad o el codigo postal de {line1}",
        "problem": "unas palabras sobre lo que le pasa a la puerta (por ejemplo: no cierra, no se puede "
        "cerrar con llave, vidrio roto, se azota, puerta automatica atorada)",
        "contact": "un telefono o correo electronico donde podamos contactarle",
        "site_choice": "en cual direccion esta la puerta ({sites}) u otra direccion",
        "access": "como llega nuestro tecnico a la puerta (por quien preguntar, un codigo de porton o de "
        "puerta, el horario)",
        "time_window": "los dias y horas en que habra alguien (por ejemplo: entre semana despues de las 2, "
        "el sabado en la mañana)",
    },
}
QUESTION_FORMS = {
    ENGLISH: ("Could you reply with {items}?", " and "),
    SPANISH: ("¿Nos puede indicar {items}?", " y "),
}
_REPLY_OPTION_RE = re.compile(
    r"^\s*(?:(?:option|opt|choice|number|no\.?|slot|window|time|(?:la |el )?(?:opci[oó]n|n[uú]mero|horario)|la|el)\s*)?"
    r"#?\s*(?P<n>[1-9])\s*[.!),]*\s*"
    r"(?:(?:please|pls|plz|thanks|thank you|thx|ok|works|is fine|is good|por favor|porfa|xfa|gracias|est[aá] bien"
    r"|me sirve|me queda bien|sí|si)\s*[.!,]*\s*)*$",
    re.IGNORECASE,
)


_CHANGE_REQUEST_RE = re.compile(
    r"\b(cancel|reschedul|postpone|push\s+(it\s+)?back|move\s+(it|the\s+appointment|my\s+appointment)|change\s+the\s+time"
    r"|can'?t\s+make\s+it|won'?t\s+be\s+(there|home))\w*",
    re.IGNORECASE,
)


@dataclass
class IntakeResult:
    """What happened to one inbound message."""

    message: InboundMessage
    ticket: Ticket | None
    created_ticket: bool = False
    duplicate: bool = False
    # The missing items asked for in this exchange ("address", "city", "problem", "contact").
    asked: list[str] = field(default_factory=list)
    # The customer's answer (1-based) to a proposal of appointment times; a scheduling face acts on it.
    reply_option: int | None = None
    # Instruction-like content, spam, or a new ticket beside an open one of the same phone/email
    # (flags["possible_duplicate"]): a dispatcher should look at the message.
    flagged: bool = False
    spam: bool = False
    # The texts sent back (queued in the outbox, or for an agent to relay when the channel is theirs).
    replies: list[str] = field(default_factory=list)
    # An SMS from one of our technicians' phones: no ticket is opened or threaded; the face that
    # received it hands it to scheduling (see technician_messages.py).
    technician_id: uuid.UUID | None = None
    # The technician's text reads as an acknowledgement ("Y", "yes", "ok", "on it").
    acknowledgement: bool = False


def _channel_clean(channel: Any) -> str:
    value = str(channel or "").strip().upper()
    if value not in InboundChannel.values:
        raise invalid_request(f"Unknown channel {channel!r}; use SMS, EMAIL, WEB or AGENT.", field="channel")
    return value


def _provider_id_clean(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_request(
            "'provider_message_id' is required: it is how retried deliveries are recognised.",
            field="provider_message_id",
        )
    # An id is compared, never shown as text: only invisible characters go ("<abc@host>" stays).
    value = sanitize.controls_remove(value).strip()
    if not value or len(value) > PROVIDER_ID_MAX:
        raise invalid_request(
            f"'provider_message_id' must be 1 to {PROVIDER_ID_MAX} characters.", field="provider_message_id"
        )
    return value


def _sender_phone(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise invalid_request("'sender_phone' must be a phone number.", field="sender_phone")
    phone = sanitize.phone_normalize(value)
    if not phone:
        raise invalid_request(f"'sender_phone' {value[:40]!r} is not a phone number.", field="sender_phone")
    return phone


def _text_arg(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_request(f"{name!r} must be text.", field=name)
    return value


def _reply_option(body: str) -> int | None:
    match = _REPLY_OPTION_RE.match(body or "")
    return int(match.group("n")) if match else None


@dataclass(frozen=True)
class TemplateNeeds:
    """What the incident templates ask for beyond address, problem and contact ("access",
    "time_window" by incident type; read once per message), and which of those the message being
    read states itself (its facts are stored only after the ticket is settled)."""

    by_type: dict[str, list[str]]
    stated: frozenset[str] = frozenset()

    @classmethod
    def read(cls, found: extract.Extraction | None = None) -> TemplateNeeds:
        stated = set()
        if found is not None and (found.time_windows is not None or found.time_preference is not None):
            stated.add("time_window")
        if found is not None and found.access is not None:
            stated.add("access")
        return cls(by_type=catalog.incident_intake_needs(), stated=frozenset(stated))


# Facts that say when the customer can be there: windows read from their words, or "any time".
TIME_FACTS = ("time_windows", "time_preference")


def _time_known(ticket: Ticket) -> bool:
    return ExtractedField.objects.filter(ticket_id=ticket.pk, name__in=TIME_FACTS).exists()


def missing_items(ticket: Ticket, needs: TemplateNeeds | None = None) -> list[str]:
    """What the ticket still lacks to be schedulable, in the order we would ask for it: an
    address, the problem, a way to reach the customer and, for a ROUTINE job whose template asks
    for them, how to get in and when someone will be there (an urgent job goes on without)."""
    missing = []
    site = ticket.site
    if not conversations.site_has_address(site):
        missing.append("city" if site.address_line1.strip() else "address")
    incident_type = (ticket.incident_type or "").strip().upper()
    if not incident_type:
        missing.append("problem")
    if not (ticket.customer_phone or ticket.customer_email):
        missing.append("contact")
    if incident_type and ticket.priority == Priority.ROUTINE:
        needs = needs or TemplateNeeds.read()
        wanted = needs.by_type.get(incident_type, ())
        access_known = "access" in needs.stated or site.access_instructions.strip() or site.access_code.strip()
        if "access" in wanted and not access_known:
            missing.append("access")
        if "time_window" in wanted and "time_window" not in needs.stated and not _time_known(ticket):
            missing.append("time_window")
    return missing


def question_text(items: list[str], *, ticket: Ticket) -> str:
    """One short, plain question asking for exactly these items, in the customer's language."""
    language = language_clean(ticket.customer_language)
    form, conjunction = QUESTION_FORMS[language]
    # A known customer is asked which of their addresses it is, as a dispatcher would.
    choices = conversations.sites_to_choose(ticket) if "address" in items else []
    sites = (
        ", ".join(site.address_line1 for site in choices[:-1]) + conjunction + choices[-1].address_line1
        if choices
        else ""
    )
    phrases = [
        QUESTION_PHRASES[language]["site_choice" if item == "address" and choices else item].format(
            line1=ticket.site.address_line1, sites=sites
        )
        for item in items
    ]
    joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + conjunction + phrases[-1]
    return form.format(items=joined)


def _summary(clean: sanitize.CleanMessage, media: list[dict]) -> str:
    for candidate in (clean.body, clean.subject):
        line = next((ln.strip() for ln in candidate.splitlines() if ln.strip()), "")
        if line:
            return line[:160]
    return "Photo from a customer" if media else "Message from a customer"


def _form_address(text: str) -> extract.Fact | None:
    """An address typed into a form's address field: the street-address pattern when it fits,
    otherwise "line 1, city[, state ZIP]" as written (the customer told us it is an address)."""
    found = extract.address_find(text)
    if found is not None:
        return found
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not re.search(r"\d", parts[0]) or not re.search(r"[A-Za-z]{2}", parts[0]):
        return None
    postal = re.search(r"\b\d{5}(?:-\d{4})?\b", text)
    city = re.sub(r"\b\d{5}(?:-\d{4})?\b", "", parts[1]).strip() if len(parts) > 1 else ""
    value = {
        "line1": parts[0][:200],
        "line2": "",
        "city": city[:100],
        "region": "",
        "postal_code": postal.group(0) if postal else "",
        "text": text[:300],
    }
    return extract.Fact("address", value, 70)


_CITY_ANSWER_RE = re.compile(
    r"^\s*(?:(?:it'?s|its|it is)\s+)?(?:in\s+)?(?P<city>[A-Za-z][A-Za-z .'\-]{1,40}?)?\s*,?\s*"
    r"(?P<state>[A-Z]{2})?\s*,?\s*(?P<zip>\d{5}(?:-\d{4})?)?\s*[.!]*\s*$"
)


def _answer_address(text: str, asked: dict, site: Site) -> extract.Fact | None:
    """Read a short answer to our own question when the general pattern does not fit it:
    "Oakland" after we asked for the city, "55 Broadway, Oakland" after we asked for the address."""
    body = text.strip()
    if asked.get("city") and site.address_line1 and not site.city and len(body) <= 80:
        match = _CITY_ANSWER_RE.match(body)
        if match and (match.group("city") or match.group("zip")):
            city = (match.group("city") or "").strip()
            if city.lower() in extract.NOT_CITY_WORDS:
                city = ""
            if city or match.group("zip"):
                value = {
                    "line1": site.address_line1,
                    "line2": "",
                    "city": city.title() if city.islower() else city,
                    "region": match.group("state") or "",
                    "postal_code": match.group("zip") or "",
                    "text": body,
                }
                return extract.Fact("address", value, 80)
    if asked.get("address") and len(body) <= 120:
        return _form_address(body)
    return None


def _answer_site(text: str, asked: dict, ticket: Ticket) -> extract.Fact | None:
    """A known customer's answer naming one of their own sites ("it's the one on Alberta, 97211")
    after we asked where the door is: that site's address."""
    if not asked.get("address") or ticket.account.is_provisional or conversations.site_has_address(ticket.site):
        return None
    sites = ticket.account.sites.exclude(pk=ticket.site_id)[: conversations.SITE_SCAN_LIMIT]
    site = conversations.site_named(sites, text)
    if site is None:
        return None
    value = {
        "line1": site.address_line1,
        "line2": site.address_line2,
        "city": site.city,
        "region": site.region,
        "postal_code": site.postal_code,
        "text": text.strip()[:300],
    }
    return extract.Fact("address", value, 85)


def _address_in_area(
    found: extract.Extraction, *, message: InboundMessage, flags: dict, result: IntakeResult
) -> service_area.AddressCheck | None:
    """Where the address the customer gave stands in the service area (one query). A street
    without a city in a one-city area is taken to be there (the address gets that city, and the
    customer is told it); an address outside the area waits for a dispatcher."""
    if found.address is None:
        return None
    check = service_area.address_check(found.address.value, area=service_area.service_area())
    if check is None:
        return None
    if check.verdict == service_area.ASSUMED:
        found.address = extract.Fact("address", {**check.address, "city_assumed": True}, found.address.confidence)
        flags["city_assumed"] = check.address["city"]
    elif check.verdict == service_area.OUTSIDE:
        flags["outside_service_area"] = check.place
        message.needs_review = result.flagged = True
    return check


def _answer_outside(check: service_area.AddressCheck, *, route, ticket: Ticket, result: IntakeResult, flags: dict):
    """The one answer to an address outside the service area: nothing more is asked, a dispatcher
    answers the customer (the message waits for review, see _address_in_area)."""
    _reply(
        route=route,
        template="outside_service_area",
        ticket=ticket,
        context={"place": check.place},
        result=result,
        flags=flags,
    )


def _reply_route(*, channel: str, phone: str, email: str, extra: dict) -> tuple[str, str] | None:
    """Where an answer to this message goes: back on the channel the customer used."""
    if channel == InboundChannel.SMS and phone:
        return "SMS", phone
    if channel == InboundChannel.EMAIL and email:
        return "EMAIL", email
    if channel == InboundChannel.WEB:
        return ("SMS", phone) if phone else (("EMAIL", email) if email else None)
    if channel == InboundChannel.AGENT:
        # The agent's channel (chat, WhatsApp) is not ours to send on; it relays the reply
        # itself unless it asks us to answer by SMS or email.
        wanted = str(extra.get("reply_channel") or "").upper()
        if wanted == "SMS" and phone:
            return "SMS", phone
        if wanted == "EMAIL" and email:
            return "EMAIL", email
    return None


def _reply(
    *,
    route,
    template: str,
    ticket: Ticket,
    context: dict,
    result: IntakeResult,
    flags: dict,
    templates: dict[str, MessageTemplate] | None = None,
) -> None:
    """Queue one reply from a template (`templates`: already read by code, saves the lookup)."""
    language = language_clean(ticket.customer_language)
    if route is None:
        stored = (templates or {}).get(template) or message_template(template, language=language)
        if stored is not None:
            values = {
                "company": getattr(settings, "DISPATCH_COMPANY_NAME", "Real Dispatch"),
                "ticket_ref": ticket.short_ref,
                **context,
            }
            result.replies.append(template_render(stored.body, values))
        return
    try:
        # outbox_enqueue refuses before it writes anything, so an undeliverable reply (a bad
        # number, a template edited to need a value we lack) never undoes the intake behind it.
        outbound = outbox_enqueue(
            channel=route[0],
            recipient=route[1],
            template=template,
            ticket=ticket,
            context=context,
            templates=templates,
            language=language,
        )
    except DispatchError as exc:
        flags.setdefault("reply_failed", []).append({"template": template, "code": exc.code})
        return
    result.replies.append(outbound.body)


def _life_threat_note(found: extract.Extraction, *, message: InboundMessage, result: IntakeResult, flags: dict) -> bool:
    """Record the urgency cues; gas, fire, smoke or someone hurt also flags the message for a
    dispatcher at once. Intake sits beside scheduling (import-linter), so it cannot open an
    Escalation itself: the flagged message is what puts the ticket in front of a person."""
    if found.urgency_cues:
        flags["urgency_cues"] = found.urgency_cues
    if not found.life_threat:
        return False
    flags["life_threat"] = found.urgency_cues["life"]
    message.needs_review = result.flagged = True
    return True


def _call_911_first(*, route, ticket: Ticket, result: IntakeResult, flags: dict) -> None:
    """The first thing a customer reporting gas, fire or an injury reads: call 911."""
    _reply(route=route, template="call_911_first", ticket=ticket, context={}, result=result, flags=flags)


def _facts_store(*, ticket: Ticket, message: InboundMessage, facts: list[extract.Fact]) -> None:
    ExtractedField.objects.bulk_create(
        ExtractedField(
            ticket=ticket,
            name=f.name,
            value=f.value,
            confidence=max(0, min(100, int(f.confidence))),
            source_message=message,
        )
        for f in facts
    )


def _triage_outcome(ticket: Ticket, review_waiting: Callable[[], bool]) -> tuple[str | None, bool]:
    """Where a complete intake ticket goes: READY_TO_SCHEDULE when intake is sure of the customer
    and the incident, the job is not an emergency, no message of the ticket waits for a dispatcher's review and (for a ticket
    blind intake opened) the gate lets it pass; TRIAGED otherwise; None when it stays where it is.
    Also says whether a review is waiting. `review_waiting` is asked only when the answer matters
    (it may cost a query)."""
    sure = (
        (ticket.identity_confidence or 0) >= identity_threshold()
        and (ticket.classification_confidence or 0) >= classification_threshold()
        # Blind intake opens tickets in TRIAGED (never NEW), so only there can a gate apply.
        and not (ticket.state == TicketState.TRIAGED and gate_refusals(ticket, blind_intake_of(ticket.id)))
    )
    if ticket.state == TicketState.TRIAGED and not sure:
        return None, False
    flagged = review_waiting()
    confident = sure and not flagged
    if ticket.state == TicketState.TRIAGED and not confident:
        return None, flagged
    # An emergency is not offered appointment times: it waits in TRIAGED to be dispatched at once
    # (assignment.dispatch's emergency bypass, by a dispatcher or the autopilot).
    ready = confident and ticket.priority != Priority.EMERGENCY
    if ticket.state == TicketState.TRIAGED and not ready:
        return None, flagged
    return (TicketState.READY_TO_SCHEDULE if ready else TicketState.TRIAGED), flagged


def _triage_facts(ticket: Ticket, target: str, flagged: bool) -> dict:
    """What intake's own triage of a ticket records in the audit trail."""
    return {
        "priority": ticket.priority,
        "incident_type": ticket.incident_type,
        "workflow_outcome": target,
        "identity_confidence": ticket.identity_confidence,
        "classification_confidence": ticket.classification_confidence,
        "held_for_review": flagged,
    }


def _progress(
    *, actor: Actor, ticket: Ticket, needs: TemplateNeeds, review_waiting: Callable[[], bool]
) -> tuple[Ticket, list[str]]:
    """Triage a complete intake ticket in its own change (see _triage_outcome). An incomplete
    ticket is left as it is; returns the ticket and the items it still lacks."""
    missing = missing_items(ticket, needs)
    if missing:
        return ticket, missing
    target, flagged = _triage_outcome(ticket, review_waiting)
    if target is None:
        return ticket, []
    outcome = ticket_triage(
        actor=actor,
        ticket_id=ticket.id,
        priority=ticket.priority,
        incident_type=ticket.incident_type,
        outcome=target,
        facts={**_triage_facts(ticket, target, flagged), "via": "intake"},
    )
    return outcome.ticket, []


def _settle(
    change: TicketChange, *, items: list[str], needs: TemplateNeeds, review_waiting: Callable[[], bool]
) -> None:
    """Inside the change that opens or updates an intake ticket, take the step that
    _progress and _ask would otherwise take in a second call (and a second audit event): a NEW
    ticket still missing something goes to NEEDS_INFO with the question; a complete one is triaged."""
    ticket = change.ticket
    if missing_items(ticket, needs):
        if items and ticket.state == TicketState.NEW:
            change.transition(TicketState.NEEDS_INFO)
            change.audit_payload["question"] = question_text(items, ticket=ticket)
        return
    target, flagged = _triage_outcome(ticket, review_waiting)
    if target is None:
        return
    ticket.incident_type = ticket.incident_type.strip().upper()
    if ticket.state != TicketState.TRIAGED:
        change.transition(TicketState.TRIAGED)
    if target == TicketState.READY_TO_SCHEDULE:
        change.transition(TicketState.READY_TO_SCHEDULE)
    change.audit_payload["triage"] = _triage_facts(ticket, target, flagged)


def _questions_due(asked: dict, missing: list[str]) -> tuple[list[str], dict]:
    """The missing items not yet asked too often, and the conversation's count once they are asked."""
    items = [item for item in missing if asked.get(item, 0) < MAX_ASKS_PER_ITEM]
    counted = dict(asked)
    for item in items:
        counted[item] = counted.get(item, 0) + 1
    return items, counted


def _ask(
    *,
    actor: Actor,
    ticket: Ticket,
    missing: list[str],
    items: list[str],
    route,
    result: IntakeResult,
    flags: dict,
    templates: dict[str, MessageTemplate] | None = None,
) -> Ticket:
    """Ask, in one message, for `items` (see _questions_due; the caller counts them on the
    conversation); park a NEW ticket in NEEDS_INFO. Nothing left to ask: a dispatcher takes over."""
    if not items:
        flags["unanswered"] = missing
        return ticket
    question = question_text(items, ticket=ticket)
    if ticket.state == TicketState.NEW:
        ticket = ticket_request_info(actor=actor, ticket_id=ticket.id, question=question).ticket
    _reply(
        route=route,
        template="needs_info",
        ticket=ticket,
        context={"question": question},
        result=result,
        flags=flags,
        templates=templates,
    )
    result.asked = items
    return ticket


def intake_ticket_update(
    *,
    actor: Actor,
    ticket_id,
    details: dict | None = None,
    address: dict | None = None,
    access: str = "",
    classification_confidence: int | None = None,
    source_message_id=None,
    account: Account | None = None,
    then: Callable[[TicketChange], None] | None = None,
    request: dict | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """Record what a customer's later message told us: blank details filled, a raised priority,
    the incident type, the address (moving the ticket to the account's matching site, or
    completing its placeholder site) and how to get in (the site's access instructions). Known
    values are never overwritten, except the language the customer writes in. `account` is the
    ticket's account when the caller has just read it (it is not read again); `then` runs in the
    same change once the details are recorded. The outcome's result is the change made."""
    details = dict(details or {})
    allowed = {"customer_name", "customer_phone", "customer_email", "customer_language", "incident_type", "priority"}
    unknown = sorted(set(details) - allowed)
    if unknown:
        raise invalid_request(f"Intake cannot set {', '.join(unknown)}.", fields=unknown)
    if "priority" in details and details["priority"] not in Priority.values:
        raise invalid_request("'priority' must be EMERGENCY, URGENT or ROUTINE.", field="priority")
    if "customer_language" in details and details["customer_language"] != language_clean(details["customer_language"]):
        raise invalid_request("'customer_language' must be en or es.", field="customer_language")
    audit: dict[str, Any] = {
        "fields": sorted(details) + (["address"] if address else []) + (["access"] if access else [])
    }
    if source_message_id is not None:
        audit["inbound_message_id"] = audit["source_message_id"] = str(source_message_id)

    with ticket_change(
        actor=actor,
        command=INTAKE_UPDATE,
        ticket_id=ticket_id,
        expected_version=expected_version,
        request=request,
        audit=audit,
    ) as change:
        ticket = change.ticket
        if account is not None and account.pk == ticket.account_id:
            ticket.account = account
        diff: dict[str, dict] = {}
        for name, value in details.items():
            old = getattr(ticket, name) or ""
            if name == "priority":
                if PRIORITY_RANK[value] <= PRIORITY_RANK.get(old, 0):
                    continue
            elif name == "customer_language":
                # The language the customer last wrote in clearly is the one to answer in.
                pass
            elif old:
                continue
            if value and str(old) != str(value):
                diff[name] = {"from": old, "to": value}
                setattr(ticket, name, value)
        if "incident_type" in diff and classification_confidence is not None:
            diff["classification_confidence"] = {
                "from": ticket.classification_confidence,
                "to": classification_confidence,
            }
            ticket.classification_confidence = classification_confidence
        if address and not conversations.site_has_address(ticket.site):
            site_diff, identity = _site_from_address(ticket, address)
            diff.update(site_diff)
            if site_diff and identity != ticket.identity_confidence:
                diff["identity_confidence"] = {"from": ticket.identity_confidence, "to": identity}
                ticket.identity_confidence = identity
        if access:
            access_diff = _site_access_fill(ticket.site, access)
            if access_diff:
                diff["site_access"] = access_diff
        change.audit_payload["changes"] = diff
        change.result = diff
        if then is not None:
            then(change)
    return change.outcome


def _site_access_fill(site: Site, access: str) -> dict | None:
    """Give a site without access instructions the customer's words on how to get in."""
    access = sanitize.text_clean(access, max_chars=extract.ACCESS_MAX_CHARS)
    if not access or site.access_instructions.strip() or site.access_code.strip():
        return None
    site.access_instructions = access
    site.save(update_fields=["access_instructions"])
    return {"site": str(site.pk), "to": access}


def _access_answer(text: str, asked: dict, found: extract.Extraction) -> extract.Fact | None:
    """Read a free-text answer to our own question on access: after "how does our technician get
    to the door?" whatever the customer says is how ("Talk to Dana, she's in 7 to 3"), unless the
    message is only something else (an address, a choice of times). Fills `found`."""
    body = text.strip()
    if not asked.get("access") or found.access is not None or _reply_option(body) is not None:
        return None
    words = re.findall(r"[^\W\d_]{2,}", body.lower())
    if found.address is not None:
        parts = " ".join(str(v) for k, v in found.address.value.items() if k != "text" and isinstance(v, str))
        said = set(re.findall(r"[^\W\d_]{2,}", parts.lower()))
        words = [w for w in words if w not in said]
    if len(words) < 2:
        return None
    found.access = extract.Fact("access", body[: extract.ACCESS_MAX_CHARS], 70)
    return found.access


def _site_from_address(ticket: Ticket, address: dict) -> tuple[dict, int | None]:
    """Give a ticket without an address the site the customer named (inside the executor);
    returns the change for the audit record and the identity confidence that follows from it."""
    placeholder = ticket.site
    account = ticket.account
    if not account.is_provisional:
        sites = account.sites.exclude(pk=placeholder.pk)[: conversations.SITE_SCAN_LIMIT]
        matched = conversations.site_matching(sites, address)
        if matched is not None:
            placeholder_id = placeholder.pk
            ticket.site = matched
            # The placeholder served only this ticket; with the real site known it goes.
            if (
                not placeholder.tickets.exclude(pk=ticket.pk).exists()
                and not placeholder.contacts.exists()
                and not placeholder.assets.exists()
            ):
                ticket.save(update_fields=["site"])
                placeholder.delete()
            change = {"site": {"from": str(placeholder_id), "to": str(matched.pk), "address": matched.address}}
            return change, conversations.IDENTITY_CONTACT_ADDRESS_MATCH
    changed = conversations.site_address_fill(placeholder, address)
    if not changed:
        return {}, ticket.identity_confidence
    complete = conversations.site_has_address(placeholder)
    if account.is_provisional:
        identity = conversations.IDENTITY_NEW_CUSTOMER_WITH_ADDRESS if complete else conversations.IDENTITY_UNKNOWN
    else:
        identity = conversations.IDENTITY_UNCONFIRMED
    return {"site_address": {"site": str(placeholder.pk), "fields": changed, "address": placeholder.address}}, identity


class _Redelivered(Exception):
    """The message's (channel, provider id) is already stored: this delivery is a retry."""


def message_receive(
    *,
    channel: str,
    provider_message_id: str,
    sender_phone: str = "",
    sender_email: str = "",
    sender_name: str = "",
    subject: str = "",
    body: str,
    media: list[dict] = (),
    raw: dict | None = None,
    actor: Actor | None = None,
    extra: dict | None = None,
    then: Callable[[IntakeResult], None] | None = None,
) -> IntakeResult:
    """Take one inbound message: dedupe, sanitize, thread or open a ticket, extract, ask or confirm.

    `then`, when given, runs with the result inside the message's transaction, only the first
    time the message arrives (never for a redelivery): what a face does with the message commits
    together with it, or neither does and the provider's retry finds nothing done.
    """
    channel = _channel_clean(channel)
    provider_id = _provider_id_clean(provider_message_id)
    if not isinstance(body, str):
        raise invalid_request("'body' must be text.", field="body")
    subject = _text_arg(subject, "subject")
    sender_name = _text_arg(sender_name, "sender_name")
    phone = _sender_phone(sender_phone)
    email = email_parse(sender_email, field="sender_email") or ""
    if channel == InboundChannel.SMS and not phone:
        raise invalid_request("An SMS needs the sender's phone number.", field="sender_phone")
    if channel == InboundChannel.EMAIL and not email:
        raise invalid_request("An email needs the sender's address.", field="sender_email")
    if raw is not None and not isinstance(raw, dict):
        raise invalid_request("'raw' must be an object.", field="raw")
    if extra is not None and not isinstance(extra, dict):
        raise invalid_request("'extra' must be an object.", field="extra")
    if media is not None and not isinstance(media, (list, tuple)):
        raise invalid_request("'media' must be a list.", field="media")
    extra = dict(extra or {})
    actor = actor or service_actor("intake")
    refusal = role_refusal(INTAKE_RECEIVE, actor.role)
    if refusal:
        raise refusal

    clean = sanitize.message_clean(body=body, subject=subject, sender_name=sender_name)
    asked = _model_reading_ask(channel=channel, provider_id=provider_id, phone=phone, clean=clean, extra=extra or {})
    stored_raw = sanitize.raw_fields_cap(raw)
    if extra:
        stored_raw["extra"] = sanitize.raw_fields_cap(extra)
    message = InboundMessage(
        channel=channel,
        provider_message_id=provider_id,
        raw_body=clean.raw_body,
        body=clean.body,
        subject=clean.subject,
        sender_phone=phone,
        sender_email=email,
        sender_name=clean.sender_name,
        media=sanitize.media_clean(media),
        raw=stored_raw,
        flags=dict(clean.flags),
        needs_review=bool(clean.flags.get("injection")),
        received_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            try:
                # The unique (channel, provider id) constraint is the dedupe: a concurrent retry
                # waits here for the first delivery's transaction and then fails to insert.
                message.save(force_insert=True)
            except IntegrityError as exc:
                raise _Redelivered from exc
            conversations.sender_lock(phone=phone, email=email)
            result = _message_process(actor=actor, message=message, clean=clean, extra=extra, asked=asked)
            if then is not None:
                then(result)
            return result
    except _Redelivered as redelivered:
        existing = (
            InboundMessage.objects.filter(channel=channel, provider_message_id=provider_id)
            .select_related("ticket")
            .first()
        )
        if existing is None:
            raise redelivered.__cause__ from None
        technician = (existing.flags or {}).get("technician") or {}
        return IntakeResult(
            message=existing,
            ticket=existing.ticket,
            duplicate=True,
            reply_option=existing.reply_option,
            flagged=existing.needs_review,
            spam=bool(existing.flags.get("spam")),
            technician_id=uuid.UUID(technician["id"]) if technician.get("id") else None,
            acknowledgement=bool(technician.get("acknowledgement")),
        )


def _own_reference_sort(flags: dict, ticket: Ticket) -> None:
    """A customer naming their own ticket ("please cancel RD-1A2B3C4D") is asking, not attacking:
    the message still waits for a dispatcher (intake never cancels), but is not marked hostile."""
    reasons = flags.get("reasons") or []
    refs = set(flags.get("ticket_refs") or [])
    if "ticket_reference_action" not in reasons or not refs or refs != {ticket.short_ref}:
        return
    reasons = [r for r in reasons if r != "ticket_reference_action"]
    flags["own_ticket_request"] = True
    if reasons:
        flags["reasons"] = reasons
    else:
        flags.pop("reasons", None)
        flags.pop("injection", None)


def _extraction_text(clean: sanitize.CleanMessage, extra: dict) -> str:
    """The message's words plus the web form's own address and time fields."""
    parts = [clean.text]
    for key, label in (("address", "Address"), ("preferred_times", "Preferred times"), ("problem", "Problem")):
        value = sanitize.text_clean(extra.get(key), max_chars=500)
        if value:
            parts.append(f"{label}: {value}")
    return "\n".join(p for p in parts if p)


def _model_reading_ask(
    *, channel: str, provider_id: str, phone: str, clean: sanitize.CleanMessage, extra: dict
) -> model_reading.Asked | None:
    """The optional model's reading of a new customer message, asked before the message's
    transaction (see model_reading.py); None when no model is configured, for a redelivery (its
    reading was taken the first time) and for a technician's text (no customer's words)."""
    if not llm.llm_configured():
        return None
    if InboundMessage.objects.filter(channel=channel, provider_message_id=provider_id).exists():
        return None
    if channel == InboundChannel.SMS and technician_for_phone(phone) is not None:
        return None
    return model_reading.reading_ask(_extraction_text(clean, extra))


def _message_process(
    *,
    actor: Actor,
    message: InboundMessage,
    clean: sanitize.CleanMessage,
    extra: dict,
    asked: model_reading.Asked | None = None,
) -> IntakeResult:
    flags = message.flags
    phone, email = message.sender_phone, message.sender_email
    result = IntakeResult(message=message, ticket=None, flagged=message.needs_review)
    technician = technician_for_phone(phone) if message.channel == InboundChannel.SMS else None
    if technician is not None:
        return _from_technician(message=message, clean=clean, technician=technician, result=result)
    route = _reply_route(channel=message.channel, phone=phone, email=email, extra=extra)
    text = _extraction_text(clean, extra)
    found = extract.message_extract(text, now=message.received_at)
    form_address = sanitize.text_clean(extra.get("address"), max_chars=300)
    if found.address is None and form_address:
        found.address = _form_address(form_address)
    model_reading.reading_merge(
        found, asked, text=text, now=message.received_at, flags=flags, instruction_like=bool(flags.get("injection"))
    )

    thread = conversations.sender_thread(phone=phone, email=email)
    name = clean.sender_name or extract.stated_name(clean.text)
    duplicates: list[dict] = []
    if thread.ticket is not None:
        thread, duplicates = _thread_choose(
            thread, message=message, address=found.address.value if found.address else None, name=name
        )
    ticket = thread.ticket
    if ticket is not None:
        _own_reference_sort(flags, ticket)
        ticket = _thread(
            actor=actor,
            thread=thread,
            message=message,
            found=found,
            clean=clean,
            route=route,
            result=result,
            flags=flags,
        )
    elif found.spam:
        flags["spam"] = found.spam
        message.needs_review = True
        result.spam = result.flagged = True
    elif not (clean.body or clean.subject or message.media):
        flags["empty"] = True
    else:
        if thread.finished:
            conversations.finished_conversations_close(phone=phone, email=email)
        ticket = _open(
            actor=actor,
            message=message,
            found=found,
            clean=clean,
            route=route,
            result=result,
            flags=flags,
            duplicates=duplicates,
            stated_name=name,
        )
    message.ticket = ticket
    message.reply_option = result.reply_option
    message.flags = flags
    message.save(update_fields=["ticket", "conversation", "reply_option", "flags", "needs_review"])
    result.ticket = ticket
    return result


def _thread_choose(
    thread: conversations.SenderThread, *, message: InboundMessage, address: dict | None, name: str
) -> tuple[conversations.SenderThread, list[dict]]:
    """The sender's open ticket this message is about, and the sender's open tickets it is not
    about (each noted for a dispatcher as a possible duplicate). The newest ticket is tried first,
    then (only when the message is not about it) the sender's others; none: the thread has no
    ticket and the message opens its own (see conversations.thread_conflicts)."""
    phone, email = message.sender_phone, message.sender_email
    conflicts = conversations.thread_conflicts(thread.ticket, channel=message.channel, address=address, name=name)
    if not conflicts:
        return thread, []
    not_about = [(thread.ticket, conflicts)]
    for other in conversations.sender_open_tickets(phone=phone, email=email, exclude=thread.ticket.pk):
        conflicts = conversations.thread_conflicts(other, channel=message.channel, address=address, name=name)
        if not conflicts:
            return conversations.SenderThread(ticket=other, finished=thread.finished), []
        not_about.append((other, conflicts))
    return conversations.SenderThread(finished=thread.finished), [
        _duplicate_note(ticket, conflicts, phone=phone, email=email) for ticket, conflicts in not_about
    ]


def _duplicate_note(ticket: Ticket, conflicts: list[str], *, phone: str, email: str) -> dict:
    """What the dispatcher is told about an open ticket sharing the sender's phone or email."""
    shared = [
        kind
        for kind, mine, theirs in (
            ("phone", phone, ticket.customer_phone),
            ("email", email.lower(), (ticket.customer_email or "").lower()),
        )
        if mine and mine == theirs
    ]
    return {
        "ticket_id": str(ticket.pk),
        "ticket_ref": ticket.short_ref,
        # Neither: the sender wrote about that ticket before from this phone or email.
        "shared": shared or ["conversation"],
        "differs": conflicts,
    }


def _from_technician(
    *, message: InboundMessage, clean: sanitize.CleanMessage, technician, result: IntakeResult
) -> IntakeResult:
    """Keep a technician's text without taking it for a customer's: no ticket, no reply. It waits
    for a dispatcher's review until whoever acts on it settles it (technician_message_settle)."""
    acknowledgement = acknowledgement_read(clean.body)
    message.flags["technician"] = technician_flag(technician, acknowledgement=acknowledgement)
    message.needs_review = True
    # An SMS names no sender; the back office lists the message under the technician's name.
    message.sender_name = message.sender_name or technician.display_name[:200]
    message.save(update_fields=["flags", "needs_review", "sender_name"])
    result.technician_id = technician.pk
    result.acknowledgement = acknowledgement
    result.flagged = True
    return result


def _open(
    *,
    actor,
    message,
    found: extract.Extraction,
    clean,
    route,
    result: IntakeResult,
    flags: dict,
    duplicates: list[dict] | None = None,
    stated_name: str = "",
) -> Ticket:
    """Open a ticket for a sender with no open ticket this message is about, confirm it and ask
    for what is missing. `duplicates`: the sender's open tickets it is not about (_thread_choose)."""
    phone, email = message.sender_phone, message.sender_email
    life_threat = _life_threat_note(found, message=message, result=result, flags=flags)
    check = _address_in_area(found, message=message, flags=flags, result=result)
    outside = check is not None and check.verdict == service_area.OUTSIDE
    address = found.address.value if found.address else None
    if duplicates:
        # Another customer sharing the phone or email, or this one at another site: a dispatcher
        # decides whether it is the same job (the message waits for review, so the ticket is not
        # scheduled by itself before). The customer's reply names only their own new ticket.
        flags["possible_duplicate"] = list(duplicates)
        message.needs_review = result.flagged = True
    place = conversations.placement_for(
        phone=phone, email=email, address=address, other_person=stated_name if duplicates else ""
    )
    name = (
        clean.sender_name
        or (found.customer_name.value if found.customer_name else "")
        or (place.contact.name if place.contact else "")
    )
    account = place.account or conversations.provisional_account_create(name=name, phone=phone, email=email)
    site = place.site or conversations.site_create(account=account, address=place.new_site_address)
    tz = site.timezone or settings.TIME_ZONE
    if tz != settings.TIME_ZONE and found.time_windows:
        windows = extract.time_windows(_extraction_text(clean, {}), now=message.received_at, tz=tz)
        found.time_windows = extract.Fact("time_windows", windows, 80) if windows else None
    incident = found.incident_type
    needs = TemplateNeeds.read(found)
    if found.access is not None and _site_access_fill(site, found.access.value):
        flags["access_recorded"] = True
    ticket = Ticket(
        account=account,
        site=site,
        state=TicketState.NEW,
        priority=found.priority.value,
        incident_type=incident.value if incident else "",
        summary=_summary(clean, message.media),
        description=clean.body,
        customer_name=name[:200],
        customer_phone=phone or (found.callback_phone.value if found.callback_phone else ""),
        customer_email=email or (found.email.value if found.email else ""),
        customer_language=found.language or ENGLISH,
        identity_confidence=place.identity_confidence,
        classification_confidence=incident.confidence if incident else 0,
    )
    # What the ticket lacks is known before it exists: it is opened and parked in NEEDS_INFO (or
    # triaged) in one change, and its conversation is written with the questions counted.
    missing = missing_items(ticket, needs)
    # Outside the area nothing is asked: a dispatcher answers the customer.
    items, asked = _questions_due({}, missing) if not outside else ([], {})
    audit = {
        "channel": message.channel,
        "inbound_message_id": str(message.id),
        "provider_message_id": message.provider_message_id,
        "placement": place.note,
        "provisional_account": account.is_provisional,
        "flags": sorted(flags),
    }
    if duplicates:
        audit["possible_duplicate_of"] = [note["ticket_id"] for note in duplicates]
    with ticket_opening(actor=actor, command=INTAKE_RECEIVE, ticket=ticket, audit=audit) as change:
        _settle(change, items=items, needs=needs, review_waiting=lambda: message.needs_review)
    ticket = change.ticket
    conversation = conversations.conversation_start(
        ticket=ticket, channel=message.channel, phone=phone, email=email, asked=asked
    )
    message.conversation = conversation
    facts = [found.priority, *[f for f in found.facts() if f.name != "priority"]]
    if place.site is not None:
        facts.append(extract.Fact("site", str(place.site.pk), place.identity_confidence))
    _facts_store(ticket=ticket, message=message, facts=facts)
    result.created_ticket = True
    if life_threat:
        _call_911_first(route=route, ticket=ticket, result=result, flags=flags)
    if outside:
        _answer_outside(check, route=route, ticket=ticket, result=result, flags=flags)
        return ticket
    # A city taken from the service area is said back, so that the customer can correct it.
    confirmation = (
        "customer_confirmation_address"
        if check is not None and check.verdict == service_area.ASSUMED
        else "customer_confirmation"
    )
    if ticket.priority == Priority.EMERGENCY and not missing:
        # An emergency is not offered appointment times: the customer hears that help is found now.
        confirmation = "customer_confirmation_emergency"
    templates = message_templates(
        codes=[confirmation, "needs_info"] if missing else [confirmation], language=ticket.customer_language
    )
    _reply(
        route=route,
        template=confirmation,
        ticket=ticket,
        context={"status_url": status_link(ticket), "address": ticket.site.address},
        result=result,
        flags=flags,
        templates=templates,
    )
    if missing:
        return _ask(
            actor=actor,
            ticket=ticket,
            missing=missing,
            items=items,
            route=route,
            result=result,
            flags=flags,
            templates=templates,
        )
    return ticket


def _thread(
    *,
    actor,
    thread: conversations.SenderThread,
    message,
    found: extract.Extraction,
    clean,
    route,
    result: IntakeResult,
    flags: dict,
) -> Ticket:
    """Add a message to the sender's open ticket; while intake is still completing the ticket,
    take what the message tells us and move the ticket on."""
    ticket = thread.ticket
    phone, email = message.sender_phone, message.sender_email
    conversation = conversations.conversation_attach(
        ticket=ticket, channel=message.channel, phone=phone, email=email, known=thread.conversation_on(message.channel)
    )
    message.conversation = conversation
    if found.spam:
        flags["spam"] = found.spam
        message.needs_review = True
        result.spam = result.flagged = True
        return ticket
    if ticket.state in REPLY_STATES:
        result.reply_option = _reply_option(clean.body)
        if result.reply_option is not None:
            return ticket
    facts = found.facts()
    if _life_threat_note(found, message=message, result=result, flags=flags):
        _call_911_first(route=route, ticket=ticket, result=result, flags=flags)
    if ticket.state not in INTAKE_STATES:
        # "Can we move it to Friday?" or "it's an emergency now" is for a dispatcher (or the
        # scheduling face) to act on; intake only makes sure someone sees it.
        if _CHANGE_REQUEST_RE.search(clean.text):
            flags["change_request"] = True
        if found.priority_stated and PRIORITY_RANK[found.priority.value] > PRIORITY_RANK.get(ticket.priority, 0):
            flags["priority_raised"] = found.priority.value
        if flags.get("change_request") or flags.get("priority_raised"):
            message.needs_review = result.flagged = True
        _facts_store(ticket=ticket, message=message, facts=facts)
        return ticket
    if found.address is None:
        answer = _answer_address(clean.body, conversation.asked or {}, ticket.site) or _answer_site(
            clean.body, conversation.asked or {}, ticket
        )
        if answer is not None:
            found.address = answer
            facts.append(answer)
    access_answer = _access_answer(clean.body, conversation.asked or {}, found)
    if access_answer is not None:
        facts.append(access_answer)
    _facts_store(ticket=ticket, message=message, facts=facts)
    needs = TemplateNeeds.read(found)
    details: dict[str, str] = {}
    if found.incident_type:
        details["incident_type"] = found.incident_type.value
    if found.priority_stated:
        details["priority"] = found.priority.value
    if not ticket.customer_phone and (phone or found.callback_phone):
        details["customer_phone"] = phone or found.callback_phone.value
    if not ticket.customer_email and (email or found.email):
        details["customer_email"] = email or found.email.value
    name = clean.sender_name or (found.customer_name.value if found.customer_name else "")
    if name and not ticket.customer_name:
        details["customer_name"] = name[:200]
    if found.language and found.language != ticket.customer_language:
        details["customer_language"] = found.language
    wanted = {k: v for k, v in details.items() if k in ("priority", "customer_language") or not getattr(ticket, k)}
    if wanted.get("priority") and PRIORITY_RANK[wanted["priority"]] <= PRIORITY_RANK.get(ticket.priority, 0):
        wanted.pop("priority")
    check = None
    if found.address and not conversations.site_has_address(ticket.site):
        check = _address_in_area(found, message=message, flags=flags, result=result)
    address = found.address.value if found.address and not conversations.site_has_address(ticket.site) else None
    site = ticket.site
    access = found.access.value if found.access and not (site.access_instructions or site.access_code) else ""
    if wanted or address or access:

        def settle(change: TicketChange) -> None:
            # The conversation's count decides what may be asked; it is written after the call.
            due, _counted = _questions_due(conversation.asked or {}, missing_items(change.ticket, needs))
            _settle(
                change,
                items=due,
                needs=needs,
                review_waiting=lambda: message.needs_review or conversations.ticket_review_waiting(change.ticket),
            )

        outcome = intake_ticket_update(
            actor=actor,
            ticket_id=ticket.id,
            details=wanted,
            address=address,
            access=access,
            classification_confidence=found.incident_type.confidence if found.incident_type else None,
            source_message_id=message.id,
            account=ticket.account,
            then=settle,
        )
        ticket = outcome.ticket
        missing = missing_items(ticket, needs)
    elif ticket.state != TicketState.NEEDS_INFO:
        # Nothing new ("thanks!"): a ticket someone else is working on is left as it is.
        return ticket
    else:
        ticket, missing = _progress(
            actor=actor,
            ticket=ticket,
            needs=needs,
            review_waiting=lambda: message.needs_review or conversations.ticket_review_waiting(ticket),
        )
    if check is not None and check.verdict == service_area.OUTSIDE:
        _answer_outside(check, route=route, ticket=ticket, result=result, flags=flags)
        return ticket
    if check is not None and check.verdict == service_area.ASSUMED and conversations.site_has_address(ticket.site):
        _reply(
            route=route,
            template="address_confirm",
            ticket=ticket,
            context={"address": ticket.site.address},
            result=result,
            flags=flags,
        )
    if missing:
        items, asked = _questions_due(conversation.asked or {}, missing)
        if items:
            conversation.asked = asked
            conversation.save(update_fields=["asked"])
        ticket = _ask(actor=actor, ticket=ticket, missing=missing, items=items, route=route, result=result, flags=flags)
    return ticket


INTAKE_REVIEW = command("intake.review", ["dispatcher"], None, None, "Mark flagged messages reviewed")


def message_review_clear(*, actor: Actor, message_ids: list, request: dict | None = None) -> int:
    """A dispatcher has read flagged messages: clear their review mark, one audit event per message."""
    refusal = role_refusal(INTAKE_REVIEW, actor.role)
    if refusal:
        raise refusal
    keys = [uuid_parse(value, field="message_ids") for value in (message_ids or [])]
    if not keys:
        raise invalid_request("Name at least one message.", field="message_ids")
    cleared = 0
    with transaction.atomic():
        # Locked so that two dispatchers clearing the same message at once write one audit event.
        for message in (
            InboundMessage.objects.select_for_update(of=("self",))
            .filter(pk__in=keys, needs_review=True)
            .select_related("ticket")
        ):
            InboundMessage.objects.filter(pk=message.pk).update(needs_review=False)
            audit_only(
                actor=actor,
                command=INTAKE_REVIEW,
                ticket=message.ticket,
                payload={
                    "inbound_message_id": str(message.pk),
                    "flags": sorted(message.flags or {}),
                    **({"request": request} if request else {}),
                },
            )
            cleared += 1
    return cleared
