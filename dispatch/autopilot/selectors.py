"""Reads about what the autopilot did: which tickets' current booking or dispatch is its doing (for
the board's marks and the ticket list), and the day's numbers the admin index draws.

Each costs a fixed number of queries, whatever the number of tickets or of the day's events.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q
from django.utils import timezone

from dispatch.common.actors import ActorType
from dispatch.intake.models import InboundMessage
from dispatch.scheduling.models import Escalation
from dispatch.tickets.models import AuditEvent, StateTransition
from dispatch.tickets.states import TicketState

ACTOR_ID = "autopilot"

# The tools that decide when and by whom a job is done: the latest of these a person or an agent
# took on a ticket is its current booking decision. A customer's numbered reply (a SERVICE actor)
# and the wake-ups (SYSTEM) carry out a decision rather than make one: the customer picks among
# the windows whoever proposed them offered.
DECISION_TOOLS = (
    "schedule.propose",
    "schedule.confirm",
    "schedule.book",
    "schedule.move",
    "schedule.hold",
    "schedule.release",
    "schedule.rollback",
    "assignment.dispatch",
    "dispatch.force_unassign",
)
DECIDING_ACTORS = (ActorType.HUMAN, ActorType.AGENT)


@dataclass(frozen=True)
class AutopilotDecision:
    """The autopilot's decision a ticket currently stands on."""

    ticket_id: Any
    event_id: Any
    tool_name: str
    reason: str
    created_at: datetime


def autopilot_decisions(ticket_ids) -> dict[Any, AutopilotDecision]:
    """{ticket id: decision} for the tickets among these whose latest booking decision (see
    DECISION_TOOLS) is the autopilot's. Two queries: the decisions' keys, then the payloads of
    the autopilot's latest ones."""
    ticket_ids = list(ticket_ids)
    if not ticket_ids:
        return {}
    latest: dict[Any, tuple[int, Any, str]] = {}
    for ticket_id, seq, event_id, actor_id in (
        AuditEvent.objects.filter(
            ticket_id__in=ticket_ids, tool_name__in=DECISION_TOOLS, actor_type__in=DECIDING_ACTORS
        )
        .order_by()
        .values_list("ticket_id", "seq", "id", "actor_id")
    ):
        if ticket_id not in latest or seq > latest[ticket_id][0]:
            latest[ticket_id] = (seq, event_id, actor_id)
    mine = [event_id for _seq, event_id, actor_id in latest.values() if actor_id == ACTOR_ID]
    if not mine:
        return {}
    decisions = {}
    for event in AuditEvent.objects.filter(pk__in=mine).only("id", "ticket_id", "tool_name", "payload", "created_at"):
        request = (event.payload or {}).get("request") or {}
        decisions[event.ticket_id] = AutopilotDecision(
            ticket_id=event.ticket_id,
            event_id=event.pk,
            tool_name=event.tool_name,
            reason=str(request.get("reason") or ""),
            created_at=event.created_at,
        )
    return decisions


# --- today's numbers, for the admin index -----------------------------------------------------------


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


@dataclass
class HourlySeries:
    """A count per hour of the company's day (0-23); hours after `now_hour` have not come yet."""

    total: int
    hours: list[int]
    now_hour: int
    note: str = ""


@dataclass
class Share:
    part: int
    whole: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.part / self.whole) if self.whole else None


@dataclass
class Durations:
    """Minutes per booking (ticket opened to SCHEDULED), with its median."""

    minutes: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.minutes)

    @property
    def median(self) -> float | None:
        return statistics.median(self.minutes) if self.minutes else None


@dataclass
class TodayNumbers:
    day: date
    now: datetime
    received: HourlySeries
    booked: HourlySeries
    on_site: HourlySeries
    done: HourlySeries
    escalations: list[tuple[str, str, int]]  # (kind, label, open count), most first
    autopilot: Share
    time_to_book: Durations

    @property
    def escalations_total(self) -> int:
        return sum(count for _kind, _label, count in self.escalations)


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def _hourly(moments, zone: ZoneInfo, now_hour: int) -> HourlySeries:
    hours = [0] * 24
    for moment in moments:
        hours[moment.astimezone(zone).hour] += 1
    return HourlySeries(total=sum(hours), hours=hours, now_hour=now_hour)


def today_numbers(*, now: datetime | None = None) -> TodayNumbers:
    """The company's day so far in numbers (five queries at most, each over an index):

    received   tickets opened today (with the customer messages that came in beside them);
    booked     tickets that reached SCHEDULED today (each once);
    on site    arrivals today; done: work finished today (COMPLETED_PENDING_VERIFICATION);
    escalations waiting now, by kind (whatever day they were raised);
    autopilot  its share of today's audit events that moved a ticket's state;
    time to book  the median minutes from a ticket's opening to its booking, for today's bookings.
    """
    now = now or timezone.now()
    zone = company_zone()
    day = now.astimezone(zone).date()
    start, end = _day_bounds(day, zone)
    now_hour = now.astimezone(zone).hour

    # From the transitions alone, through the audit event's indexed time (transitions keep no index
    # of their own on it): a ticket's opening is its transition from "" (its first, seq 1).
    reached = (
        StateTransition.objects.filter(
            Q(from_state="")
            | Q(to_state__in=(TicketState.SCHEDULED, TicketState.ON_SITE, TicketState.COMPLETED_PENDING_VERIFICATION)),
            audit_event__created_at__gte=start,
            audit_event__created_at__lt=end,
        )
        .order_by()
        .values_list("from_state", "to_state", "ticket_id", "created_at")
    )
    firsts: dict[tuple[str, Any], datetime] = {}
    for from_state, to_state, ticket_id, moment in reached:
        key = ("" if not from_state else to_state, ticket_id)
        if key not in firsts or moment < firsts[key]:
            firsts[key] = moment
    by_state: dict[str, list[datetime]] = {}
    for (to_state, _ticket_id), moment in firsts.items():
        by_state.setdefault(to_state, []).append(moment)

    received = _hourly(by_state.get("", []), zone, now_hour)
    messages = InboundMessage.objects.filter(received_at__gte=start, received_at__lt=end).count()
    received.note = f"{messages} message{'' if messages == 1 else 's'} in"

    booked_at = {
        ticket_id: moment for (to_state, ticket_id), moment in firsts.items() if to_state == TicketState.SCHEDULED
    }
    opened_at = (
        dict(
            StateTransition.objects.filter(ticket_id__in=list(booked_at), seq=1)
            .order_by()
            .values_list("ticket_id", "created_at")
        )
        if booked_at
        else {}
    )
    booking_minutes = [
        max(0.0, (moment - opened_at[ticket_id]).total_seconds() / 60)
        for ticket_id, moment in booked_at.items()
        if ticket_id in opened_at
    ]

    labels = dict(Escalation._meta.get_field("kind").choices)
    # Open now, whatever day raised them (the wake-up resolves those of tickets since closed).
    waiting = Counter(
        dict(
            Escalation.objects.filter(resolved_at__isnull=True)
            .order_by()
            .values("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
    )

    moves = (
        AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end, ticket__isnull=False)
        .exclude(before_state=F("after_state"))
        .aggregate(whole=Count("id"), part=Count("id", filter=Q(actor_id=ACTOR_ID)))
    )
    return TodayNumbers(
        day=day,
        now=now,
        received=received,
        booked=_hourly(by_state.get(TicketState.SCHEDULED, []), zone, now_hour),
        on_site=_hourly(by_state.get(TicketState.ON_SITE, []), zone, now_hour),
        done=_hourly(by_state.get(TicketState.COMPLETED_PENDING_VERIFICATION, []), zone, now_hour),
        escalations=[(kind, labels.get(kind, kind), count) for kind, count in waiting.most_common()],
        autopilot=Share(part=moves["part"], whole=moves["whole"]),
        time_to_book=Durations(sorted(booking_minutes)),
    )
