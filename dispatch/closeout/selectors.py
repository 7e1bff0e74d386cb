"""Reads of closeout data: a ticket's evidence, latest completion, labor and parts, the price book,
and the autonomy controls (the pause that applies to a ticket, their state and replay)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from functools import partial

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import not_found
from dispatch.tickets.models import Ticket
from dispatch.tickets.policy import access_check, access_refusal
from dispatch.tickets.services import ticket_not_found

from .billing import billing_settings, cents_round, labor_price
from .models import (
    AutonomyPause,
    AutonomyScope,
    ChecklistResult,
    Evidence,
    IncidentTemplate,
    LaborEntry,
    PartUsage,
    PriceBookItem,
)
from .packets import evidence_item, iso

# When several pauses apply to one ticket, the narrowest one explains the refusal.
SCOPE_PRECEDENCE = {AutonomyScope.TICKET: 0, AutonomyScope.INCIDENT: 1, AutonomyScope.GLOBAL: 2}
# The active pauses are cached with the version they were read under; a pause or a rollback
# writes a new version, and an entry whose version is not the current one is never used.
AUTONOMY_VERSION_KEY = "closeout:autonomy:version"
AUTONOMY_PAUSES_KEY = "closeout:autonomy:pauses"


def evidence_list(ticket: Ticket) -> dict:
    """The ticket's evidence, oldest first (ties broken by id), as the toolset returns it."""
    items = Evidence.objects.filter(ticket=ticket).order_by("created_at", "id")
    return {"ticket_id": str(ticket.id), "evidence": [evidence_item(item) for item in items]}


def evidence_visible(actor: Actor, evidence_id, *, ticket_id=None) -> Evidence:
    """An evidence item whose ticket this actor may see (the policy's access rule: any ticket for
    the office, a technician's own jobs, a scoped credential's accounts), with its ticket; of
    `ticket_id` only, when given. Anything else, including an id that is no UUID, is the same 404
    EVIDENCE_NOT_FOUND, so a guessed or forged address learns nothing of what exists."""
    missing = not_found("EVIDENCE_NOT_FOUND", "No such evidence.")
    try:
        key = uuid.UUID(str(evidence_id))
        ticket_key = None if ticket_id is None else uuid.UUID(str(ticket_id))
    except ValueError:
        raise missing from None
    items = Evidence.objects.select_related("ticket").filter(pk=key)
    if ticket_key is not None:
        items = items.filter(ticket_id=ticket_key)
    item = items.first()
    if item is None or access_refusal(actor, item.ticket) is not None:
        raise missing
    return item


def completion_latest(ticket_id) -> ChecklistResult | None:
    """The ticket's latest completion submission: the checklist as answered, the no-signature
    reason and the evidence it cited (tech.complete, closeout.candidate, or a dispatcher's manual
    bypass, which carries the latest answers forward). None before any completion."""
    return ChecklistResult.objects.filter(ticket_id=ticket_id).order_by("-created_at", "-id").first()


PRICE_BOOK_SEARCH_MAX = 100


def price_book_search(query: str, limit: int = 20) -> list[dict]:
    """Active price book items whose name contains `query` or whose SKU starts with it (any case),
    by name; a blank query lists the first items by name. At most `limit` (1 to 100) rows."""
    limit = max(1, min(int(limit), PRICE_BOOK_SEARCH_MAX))
    term = (query or "").strip()[:100]
    items = PriceBookItem.objects.filter(active=True)
    if term:
        items = items.filter(Q(name__icontains=term) | Q(sku__istartswith=term))
    return [
        {"id": item.id, "sku": item.sku, "name": item.name, "unit_cents": item.unit_cents, "taxable": item.taxable}
        for item in items.order_by("name", "sku")[:limit]
    ]


def labor_and_parts(ticket) -> dict:
    """A ticket's labor entries and parts, oldest first, with each line's amount in cents as the
    invoice will compute it (labor at its own rate or its rate class's; parts at their own price
    or the price book's), and the totals before tax. `ticket` carries its site."""
    ticket_id = ticket.id
    profile = billing_settings()
    labor = []
    for entry in (
        LaborEntry.objects.filter(ticket_id=ticket_id).select_related("technician").order_by("created_at", "id")
    ):
        price = labor_price(
            ticket,
            entry.minutes,
            when=entry.worked_at or entry.created_at,
            rate_cents=entry.rate_cents,
            profile=profile,
        )
        labor.append(
            {
                "id": entry.id,
                "technician_id": str(entry.technician_id) if entry.technician_id else None,
                "technician_name": entry.technician.display_name if entry.technician_id else None,
                "minutes": entry.minutes,
                "description": entry.description,
                "rate_cents": price.rate_cents,
                "standard_rate": entry.rate_cents is None,
                "line_total_cents": price.amount_cents,
                "created_by": entry.created_by,
                "created_at": iso(entry.created_at),
            }
        )
    parts = []
    usages = (
        PartUsage.objects.filter(ticket_id=ticket_id).select_related("price_book_item").order_by("created_at", "id")
    )
    for usage in usages:
        item = usage.price_book_item
        unit = usage.unit_cents if usage.unit_cents is not None else (item.unit_cents if item else 0)
        parts.append(
            {
                "id": usage.id,
                "sku": item.sku if item else None,
                "name": item.name if item else None,
                "description": usage.description or (item.name if item else ""),
                "quantity": str(usage.quantity),
                "unit_cents": unit,
                "line_total_cents": cents_round(Decimal(usage.quantity) * Decimal(unit)),
                "created_by": usage.created_by,
                "created_at": iso(usage.created_at),
            }
        )
    return {
        "labor": labor,
        "parts": parts,
        "labor_minutes": sum(row["minutes"] for row in labor),
        "labor_cents": sum(row["line_total_cents"] for row in labor),
        "parts_cents": sum(row["line_total_cents"] for row in parts),
    }


def autonomy_pause_serialize(pause: AutonomyPause) -> dict:
    return {
        "id": str(pause.id),
        "scope_type": pause.scope_type,
        "incident_type": pause.incident_type or None,
        "ticket_id": str(pause.ticket_id) if pause.ticket_id else None,
        "is_paused": pause.is_active,
        "reason": pause.reason or None,
        "actor_id": pause.paused_by,
        "actor_role": pause.paused_by_role or None,
        "created_at": iso(pause.created_at),
        "updated_at": iso(pause.rolled_back_at or pause.created_at),
        "rolled_back_at": iso(pause.rolled_back_at),
        "rolled_back_by": pause.rolled_back_by or None,
        "rollback_reason": pause.rollback_reason or None,
    }


def _scope_filter(ticket_id, incident_type: str | None) -> Q:
    where = Q(scope_type=AutonomyScope.GLOBAL)
    if incident_type:
        where |= Q(scope_type=AutonomyScope.INCIDENT, incident_type=incident_type.strip().upper())
    if ticket_id:
        where |= Q(scope_type=AutonomyScope.TICKET, ticket_id=ticket_id)
    return where


def _by_precedence(pauses) -> list[AutonomyPause]:
    return sorted(
        pauses, key=lambda pause: (SCOPE_PRECEDENCE[pause.scope_type], -pause.created_at.timestamp(), str(pause.id))
    )


def autonomy_version_bump() -> None:
    """Make every process read the pauses afresh: called by a pause and a rollback."""
    cache.set(AUTONOMY_VERSION_KEY, uuid.uuid4().hex, timeout=None)


def autonomy_cache_renew() -> None:
    """Once a pause or a rollback has committed: a new version, filled at once with the pauses as
    they now stand (a refused agent's own fill is rolled back with its command)."""
    autonomy_version_bump()
    autonomy_pauses_active()


def autonomy_pauses_active() -> list[AutonomyPause]:
    """Every active pause, from the cache while no pause or rollback has come since it was filled.

    The version lives in the shared cache (the database cache in production), so a pause takes
    effect at once in every process. A lost version (evicted, a fresh cache) is replaced by a new
    one, so no entry filled before can match it.
    """
    cached = cache.get_many([AUTONOMY_VERSION_KEY, AUTONOMY_PAUSES_KEY])
    version, entry = cached.get(AUTONOMY_VERSION_KEY), cached.get(AUTONOMY_PAUSES_KEY)
    if version is not None and entry is not None and entry[0] == version:
        return entry[1]
    if version is None:
        cache.add(AUTONOMY_VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(AUTONOMY_VERSION_KEY)
    pauses = list(AutonomyPause.objects.filter(rolled_back_at__isnull=True))
    # Filled once the caller's transaction commits (at once outside one): a write to the database
    # cache inside a ticket's transaction would keep that cache row locked until the commit, and
    # every other closeout command that misses would queue behind it. Tagged with the version read
    # before the pauses, an entry that a pause overtook is never used.
    transaction.on_commit(partial(cache.set, AUTONOMY_PAUSES_KEY, (version, pauses), timeout=None))
    return pauses


def _applies(pause: AutonomyPause, ticket_id, incident_type: str | None) -> bool:
    if pause.scope_type == AutonomyScope.TICKET:
        return ticket_id is not None and str(pause.ticket_id) == str(ticket_id)
    if pause.scope_type == AutonomyScope.INCIDENT:
        return bool(incident_type) and pause.incident_type == incident_type.strip().upper()
    return True


def autonomy_pauses_for(*, ticket_id=None, incident_type: str | None = None) -> list[AutonomyPause]:
    """Active pauses that apply to a ticket (its own, its incident type's, the global one),
    narrowest first."""
    return _by_precedence(pause for pause in autonomy_pauses_active() if _applies(pause, ticket_id, incident_type))


def autonomy_pause_effective(ticket: Ticket) -> AutonomyPause | None:
    """The pause that stops agents on this ticket, or None when agents may act."""
    pauses = autonomy_pauses_for(ticket_id=ticket.id, incident_type=ticket.incident_type)
    return pauses[0] if pauses else None


def _decision(pauses: list[AutonomyPause]) -> dict | None:
    if not pauses:
        return None
    top = pauses[0]
    return {
        "scope_type": top.scope_type,
        "incident_type": top.incident_type or None,
        "ticket_id": str(top.ticket_id) if top.ticket_id else None,
        "is_paused": True,
        "reason": top.reason or None,
    }


def _history(rows) -> list[dict]:
    """Each pause row as the actions it records (pause, and rollback when stamped), newest first."""
    actions = []
    for row in rows:
        scope = {
            "pause_id": str(row.id),
            "scope_type": row.scope_type,
            "incident_type": row.incident_type or None,
            "ticket_id": str(row.ticket_id) if row.ticket_id else None,
        }
        actions.append(
            {
                **scope,
                "action": "pause",
                "actor_id": row.paused_by,
                "actor_role": row.paused_by_role or None,
                "reason": row.reason or None,
                "created_at": iso(row.created_at),
                "_at": row.created_at,
            }
        )
        if row.rolled_back_at:
            actions.append(
                {
                    **scope,
                    "action": "rollback",
                    "actor_id": row.rolled_back_by,
                    "actor_role": None,
                    "reason": row.rollback_reason or None,
                    "created_at": iso(row.rolled_back_at),
                    "_at": row.rolled_back_at,
                }
            )
    actions.sort(key=lambda a: (a["_at"], a["action"] == "rollback"), reverse=True)
    for action in actions:
        del action["_at"]
    return actions


def autonomy_state(*, ticket_id=None, incident_type: str | None = None) -> dict:
    """Every active pause, the whole pause history, and (when a ticket or incident type is
    named) the decision that would apply to it."""
    incident = (incident_type or "").strip().upper() or None
    if ticket_id and not incident:
        ticket = Ticket.objects.filter(pk=ticket_id).only("incident_type").first()
        if ticket is not None:
            incident = (ticket.incident_type or "").strip().upper() or None
    active = _by_precedence(autonomy_pauses_active())
    chain = autonomy_pauses_for(ticket_id=ticket_id, incident_type=incident) if (ticket_id or incident) else []
    return {
        "generated_at": iso(timezone.now()),
        "controls": [autonomy_pause_serialize(pause) for pause in active],
        "decision": _decision(chain),
        "chain": [autonomy_pause_serialize(pause) for pause in chain],
        "history": _history(AutonomyPause.objects.order_by("-created_at", "id")),
        "query": {"ticket_id": str(ticket_id) if ticket_id else None, "incident_type": incident},
    }


def autonomy_replay(ticket_id, *, actor: Actor | None = None) -> dict:
    """What the autonomy controls said about one ticket: the decision now, the pauses that
    apply, and the pause/rollback history of every scope that covers it."""
    try:
        key = uuid.UUID(str(ticket_id))
    except ValueError:
        raise ticket_not_found(ticket_id) from None
    ticket = Ticket.objects.filter(pk=key).first()
    if ticket is None:
        raise ticket_not_found(ticket_id)
    if actor is not None:
        access_check(actor, ticket)
    incident = (ticket.incident_type or "").strip().upper() or None
    chain = autonomy_pauses_for(ticket_id=ticket.id, incident_type=incident)
    covering = AutonomyPause.objects.filter(_scope_filter(ticket.id, incident)).order_by("-created_at", "id")
    return {
        "generated_at": iso(timezone.now()),
        "ticket_id": str(ticket.id),
        "incident_type": incident,
        "decision": _decision(chain),
        "chain": [autonomy_pause_serialize(pause) for pause in chain],
        "controls": [autonomy_pause_serialize(pause) for pause in _by_precedence(covering)],
        "history": _history(covering),
    }


def incident_duration_minutes(incident_type: str) -> int | None:
    """The template's typical job length for this incident type (stored upper-case), or None."""
    return (
        IncidentTemplate.objects.filter(incident_type=incident_type.strip().upper())
        .values_list("default_duration_minutes", flat=True)
        .first()
    )


def incident_crew(incident_type: str) -> tuple[int, int]:
    """(technicians needed, consecutive working days) for this incident type; (1, 1) without a template."""
    found = (
        IncidentTemplate.objects.filter(incident_type=(incident_type or "").strip().upper())
        .values_list("crew_size", "days")
        .first()
    )
    return (max(1, found[0]), max(1, found[1])) if found else (1, 1)


def incident_crew_types() -> set[str]:
    """The incident types whose jobs need more than one technician or more than one day (one query)."""
    return set(
        IncidentTemplate.objects.filter(Q(crew_size__gt=1) | Q(days__gt=1)).values_list("incident_type", flat=True)
    )


def incident_keywords() -> dict[str, list[str]]:
    """Keywords per incident type, as the templates say today (one query)."""
    rows = IncidentTemplate.objects.values_list("incident_type", "keywords")
    return {incident_type: list(keywords or []) for incident_type, keywords in rows}


def incident_intake_needs() -> dict[str, list[str]]:
    """What each incident type asks intake for beyond address and problem (one query; types that
    ask for nothing are left out)."""
    rows = IncidentTemplate.objects.values_list("incident_type", "intake_needs")
    return {
        incident_type: [n for n in needs if isinstance(n, str)]
        for incident_type, needs in rows
        if isinstance(needs, list) and needs
    }


def incident_type_names() -> dict[str, str]:
    """Each incident type that has a template, with the template's name (one query)."""
    return dict(IncidentTemplate.objects.values_list("incident_type", "name"))
