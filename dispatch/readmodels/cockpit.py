"""The dispatcher's cockpit: the open-ticket queue with SLA clocks, counts and the actions allowed now.

The queue comes a page at a time (COCKPIT_DEFAULT_ROWS unless `limit` says otherwise) with the
counts always for the whole queue. The next page is asked for with the answer's `next_cursor`, an
opaque, signed string naming the sort keys of the page's last row: the next page is the rows after
it in the queue's order (keyset pagination), so a ticket that changes or leaves between two pages
neither repeats nor hides any other. `offset` still works for the clients that page by it.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.core import signing
from django.db.models import Count, F, Q
from django.utils import timezone

from dispatch.common.actors import Actor
from dispatch.common.errors import invalid_request
from dispatch.tickets.models import Priority, Ticket
from dispatch.tickets.policy import access_filter
from dispatch.tickets.selectors import (
    PRIORITY_ORDER,
    SLA_STATUSES,
    actor_summary,
    allowed_tools,
    iso_utc,
    priority_rank,
    sla_deadline_expression,
    sla_snapshot,
    sla_status_q,
    str_or_none,
    ticket_actions,
    ticket_detail,
    ticket_get_for_actor,
    ticket_timeline,
    tools_by_name,
)
from dispatch.tickets.states import OPEN_STATES, TicketState

COCKPIT_DEFAULT_ROWS = 50
COCKPIT_MAX_ROWS = 200
# A cursor is a few sort keys, signed: anything much longer is not one of ours.
CURSOR_MAX_LENGTH = 400
CURSOR_SALT = "dispatch.readmodels.cockpit.cursor"
CURSOR_VERSION = 1

# The actions each queue row offers, in the contract's names.
DISPATCHER_QUEUE_ACTIONS = (
    ("schedule_propose", "schedule.propose"),
    ("schedule_confirm", "schedule.confirm"),
    ("dispatch_assignment", "assignment.dispatch"),
    ("recommend_technicians", "assignment.recommend"),
    ("hold_schedule", "schedule.hold"),
    ("release_schedule", "schedule.release"),
    ("rollback_schedule", "schedule.rollback"),
    ("open_timeline", "ticket.timeline"),
    ("open_technician_packet", "tech.job_packet"),
)


def _parts(values: Iterable[str] | None) -> Iterator[str]:
    """Each non-empty value of a filter that may repeat (?state=A&state=B) or list (?state=A,B)."""
    for raw in values or ():
        for part in str(raw).split(","):
            if part.strip():
                yield part.strip()


def _enum_filter(name: str, values: Iterable[str] | None, allowed: Iterable[str], *, upper: bool = True) -> list[str]:
    chosen = []
    for part in _parts(values):
        part = part.upper() if upper else part.lower()
        if part not in allowed:
            raise invalid_request(f"Filter {name!r} has an unsupported value {part!r}.", field=name)
        chosen.append(part)
    return sorted(set(chosen))


def _uuid_filter(name: str, values: Iterable[str] | None) -> list[str]:
    chosen = []
    for part in _parts(values):
        try:
            chosen.append(str(uuid.UUID(part)))
        except ValueError:
            raise invalid_request(f"Filter {name!r} takes UUIDs.", field=name) from None
    return sorted(set(chosen))


def _bounded_int(name: str, value: Any, *, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid_request(f"{name!r} must be a whole number.", field=name) from None
    if number < low or number > high:
        raise invalid_request(f"{name!r} must be between {low} and {high}.", field=name)
    return number


def dispatcher_cockpit(
    *,
    actor: Actor,
    commands: Iterable[Any],
    state: Iterable[str] | None = None,
    priority: Iterable[str] | None = None,
    sla_status: Iterable[str] | None = None,
    account_id: Iterable[str] | None = None,
    site_id: Iterable[str] | None = None,
    assigned_tech_id: Iterable[str] | None = None,
    incident_type: Iterable[str] | None = None,
    sort: str = "priority",
    limit: Any = None,
    offset: Any = None,
    cursor: Any = None,
    ticket_id: str | None = None,
    now: datetime | None = None,
) -> dict:
    """The dispatcher's queue: open tickets by priority and age (or by SLA deadline), each with
    its site, technician, SLA clock and the actions allowed now; counts per state, priority and
    SLA status. A fixed number of queries whatever the number of tickets or the page.

    One page of `limit` rows (default COCKPIT_DEFAULT_ROWS, at most COCKPIT_MAX_ROWS): the first,
    the one after `cursor` (a previous answer's next_cursor, for the same filters and sort), or
    the one `offset` rows in. `next_cursor` is null on the last page.
    """
    now = now or timezone.now()
    tools = tools_by_name(commands)
    open_states = [state.value for state in OPEN_STATES]
    filters = {
        "state": _enum_filter("state", state, open_states),
        "priority": _enum_filter("priority", priority, Priority.values),
        "sla_status": _enum_filter("sla_status", sla_status, SLA_STATUSES, upper=False),
        "account_id": _uuid_filter("account_id", account_id),
        "site_id": _uuid_filter("site_id", site_id),
        "assigned_tech_id": _uuid_filter("assigned_tech_id", assigned_tech_id),
        "incident_type": sorted({part.upper() for part in _parts(incident_type)}),
    }
    if sort not in ("priority", "sla"):
        raise invalid_request(
            "'sort' is 'priority' (priority, then oldest first) or 'sla' (nearest deadline first).", field="sort"
        )
    limit = _bounded_int("limit", limit, default=COCKPIT_DEFAULT_ROWS, low=1, high=COCKPIT_MAX_ROWS)
    offset = _bounded_int("offset", offset, default=0, low=0, high=10**9)
    query_key = _query_key(filters, sort)
    after = None
    if cursor not in (None, ""):
        if offset:
            raise invalid_request("Page by 'cursor' or by 'offset', not both.", field="cursor")
        after = _cursor_read(cursor, sort=sort, query_key=query_key)

    # A positive list of open states lets the database use the (state, priority) index instead
    # of reading the closed history.
    base = Ticket.objects.filter(state__in=open_states).filter(access_filter(actor))
    for field_name in ("account_id", "site_id", "assigned_tech_id", "incident_type"):
        if filters[field_name]:
            base = base.filter(**{f"{field_name}__in": filters[field_name]})
    base = base.annotate(sla_deadline=sla_deadline_expression())

    counts = _cockpit_counts(base, now)
    queue = base
    if filters["state"]:
        queue = queue.filter(state__in=filters["state"])
    if filters["priority"]:
        queue = queue.filter(priority__in=filters["priority"])
    if filters["sla_status"]:
        wanted = Q(pk__in=[])
        for status in filters["sla_status"]:
            wanted |= sla_status_q(status, now)
        queue = queue.filter(wanted)
    total = _matching_total(counts["_groups"], filters)

    if sort == "sla":
        ordering = [F("sla_deadline").asc(), "priority_rank", "created_at", "id"]
    else:
        ordering = ["priority_rank", "created_at", "id"]
    if after is not None:
        queue = queue.filter(_after_q(sort, after))
    # One row more than the page tells whether there is a next one.
    rows = list(
        queue.annotate(priority_rank=priority_rank())
        .select_related("site", "assigned_tech")
        .order_by(*ordering)[offset : offset + limit + 1]
    )
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = _cursor_make(rows[-1], sort=sort, query_key=query_key) if more else None

    selected = None
    if ticket_id:
        ticket = ticket_get_for_actor(actor=actor, ticket_id=ticket_id)
        selected = {"ticket": ticket_detail(ticket), "timeline": ticket_timeline(ticket)}

    # A cursor's page has no position to tell: its offsets are null.
    next_offset = offset + len(rows) if after is None and more else None
    return {
        "generated_at": iso_utc(now),
        "actor": actor_summary(actor),
        "filters_applied": {**filters, "sort": sort, "ticket_id": ticket_id},
        "page": {
            "limit": limit,
            "offset": None if after is not None else offset,
            "total": total,
            "next_offset": next_offset,
            "next_cursor": next_cursor,
        },
        "next_cursor": next_cursor,
        "counts": {key: value for key, value in counts.items() if not key.startswith("_")},
        "queue": [_queue_row(ticket, actor, tools, now) for ticket in rows],
        "selected_ticket": selected,
    }


# --- the cursor -----------------------------------------------------------------------------
# The queue is ordered by expressions (priority_rank, and sla_deadline for sort=sla), so the
# cursor carries the last row's values of every sort key and the next page filters on
# "after these" in the same order: (deadline,) rank, created_at, id, the id making it total.


def _query_key(filters: dict, sort: str) -> str:
    """Which query a cursor belongs to: its filters and sort (not the page or the selected ticket)."""
    text = json.dumps({**filters, "sort": sort}, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _rank_of(priority: str) -> int:
    ranks = [str(value) for value in PRIORITY_ORDER]
    return ranks.index(priority) if priority in ranks else len(ranks)


def _cursor_make(ticket: Ticket, *, sort: str, query_key: str) -> str:
    keys = [_rank_of(ticket.priority), ticket.created_at.isoformat(), str(ticket.id)]
    if sort == "sla":
        keys.insert(0, ticket.sla_deadline.isoformat())
    payload = {"v": CURSOR_VERSION, "q": query_key, "k": keys}
    return signing.Signer(salt=CURSOR_SALT).sign_object(payload)


def _bad_cursor(message: str):
    return invalid_request(
        f"{message} Pass a previous answer's next_cursor unchanged, or none for the first page.", field="cursor"
    )


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    if moment is None or timezone.is_naive(moment):
        raise ValueError(value)
    return moment


def _cursor_read(raw: Any, *, sort: str, query_key: str) -> dict:
    """The sort keys a cursor names, or INVALID_REQUEST: not a string, too long, not signed by
    this server, or issued for other filters or another sort."""
    if not isinstance(raw, str) or len(raw) > CURSOR_MAX_LENGTH:
        raise _bad_cursor("'cursor' is not a cursor of this queue.")
    try:
        payload = signing.Signer(salt=CURSOR_SALT).unsign_object(raw)
    except (signing.BadSignature, ValueError, TypeError):
        raise _bad_cursor("'cursor' is not a cursor of this queue.") from None
    if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
        raise _bad_cursor("'cursor' is from another version of the cockpit.")
    if payload.get("q") != query_key:
        raise _bad_cursor("'cursor' belongs to a page with other filters or another sort.")
    keys = payload.get("k")
    try:
        if not isinstance(keys, list) or len(keys) != (4 if sort == "sla" else 3):
            raise ValueError(keys)
        rank, created_at, key = keys[-3:]
        if not isinstance(rank, int) or not 0 <= rank <= len(PRIORITY_ORDER):
            raise ValueError(rank)
        after = {"rank": rank, "created_at": _instant(created_at), "id": uuid.UUID(key)}
        if sort == "sla":
            after["sla_deadline"] = _instant(keys[0])
    except (ValueError, TypeError, AttributeError):
        raise _bad_cursor("'cursor' is not a cursor of this queue.") from None
    return after


def _rank_q(rank: int, *, after: bool) -> Q:
    """The tickets whose priority ranks after (or with) `rank`, on the priority column itself
    rather than the rank expression, so the (state, priority) index can serve it."""
    known = [str(value) for value in PRIORITY_ORDER]
    unknown = ~Q(priority__in=known)  # ranked last, after every known priority
    if not after:
        return Q(priority=known[rank]) if rank < len(known) else unknown
    later = known[rank + 1 :]
    if rank >= len(known):
        return Q(pk__in=[])
    return (Q(priority__in=later) | unknown) if later else unknown


def _after_q(sort: str, after: dict) -> Q:
    """The rows after the cursor's in the queue's order."""
    same_rank_after = Q(created_at__gt=after["created_at"]) | Q(created_at=after["created_at"], id__gt=after["id"])
    by_priority = _rank_q(after["rank"], after=True) | (_rank_q(after["rank"], after=False) & same_rank_after)
    if sort != "sla":
        return by_priority
    return Q(sla_deadline__gt=after["sla_deadline"]) | (Q(sla_deadline=after["sla_deadline"]) & by_priority)


def _cockpit_counts(base, now: datetime) -> dict:
    """Per (state, priority): how many open tickets and how many per SLA status, in one query."""
    groups = list(
        base.order_by()
        .values("state", "priority")
        .annotate(
            total=Count("id"),
            breach=Count("id", filter=sla_status_q("breach", now)),
            warning=Count("id", filter=sla_status_q("warning", now)),
            healthy=Count("id", filter=sla_status_q("healthy", now)),
        )
    )
    by_state = {state.value: 0 for state in TicketState if state in OPEN_STATES}
    by_priority = {priority.value: 0 for priority in PRIORITY_ORDER}
    by_sla = dict.fromkeys(SLA_STATUSES, 0)
    for group in groups:
        by_state[group["state"]] = by_state.get(group["state"], 0) + group["total"]
        by_priority[group["priority"]] = by_priority.get(group["priority"], 0) + group["total"]
        for status in SLA_STATUSES:
            by_sla[status] += group[status]
    return {
        "total_open": sum(by_state.values()),
        "by_state": by_state,
        "by_priority": by_priority,
        "by_sla_status": by_sla,
        "_groups": groups,
    }


def _matching_total(groups: list[dict], filters: dict) -> int:
    total = 0
    for group in groups:
        if filters["state"] and group["state"] not in filters["state"]:
            continue
        if filters["priority"] and group["priority"] not in filters["priority"]:
            continue
        total += sum(group[status] for status in filters["sla_status"]) if filters["sla_status"] else group["total"]
    return total


def _queue_row(ticket: Ticket, actor: Actor, tools: dict, now: datetime) -> dict:
    site = ticket.site
    tech = ticket.assigned_tech
    return {
        "ticket_id": str(ticket.id),
        "state": str(ticket.state),
        "priority": ticket.priority,
        "incident_type": ticket.incident_type or None,
        "summary": ticket.summary,
        "customer_name": ticket.customer_name or None,
        "site_region": site.service_region or site.region or None,
        "site": {
            "id": str(site.id),
            "name": site.name,
            "address": site.address,
            "city": site.city,
            "region": site.region or None,
            "service_region": site.service_region or None,
        },
        "assigned_tech": str_or_none(ticket.assigned_tech_id),
        "assigned_tech_name": tech.display_name if tech else None,
        "scheduled_start": iso_utc(ticket.scheduled_start),
        "scheduled_end": iso_utc(ticket.scheduled_end),
        "created_at": iso_utc(ticket.created_at),
        "age_minutes": max(0, math.floor((now - ticket.created_at).total_seconds() / 60)),
        "last_update_at": iso_utc(ticket.updated_at),
        "version": ticket.version,
        **sla_snapshot(ticket, now),
        "actions": ticket_actions(actor=actor, ticket=ticket, commands=tools, blueprint=DISPATCHER_QUEUE_ACTIONS),
        "allowed_tools": allowed_tools(actor=actor, ticket=ticket, commands=tools),
    }
