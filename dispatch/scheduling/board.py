"""Reads for the dispatch board: one day, one lane per technician, the unscheduled queue and the
open escalations, laid out for the page (positions as percentages of the day's time axis).

`board_day` costs the same few queries whatever the number of technicians and appointments
(technicians + their regions, shifts, time off, the day's appointments with ticket and site, the
queue, the escalations); everything else is arithmetic in Python. All times are shown in the
company's timezone (settings.TIME_ZONE); a site in another zone gets its local time noted.

`board_version` is what the page's live refresh asks first: a short digest of everything the live
part shows for a day and a technician filter, read with a few small queries and no rendering, so a
poll that finds nothing changed is answered with no content (see views.board_live).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Case, Exists, IntegerField, OuterRef, Value, When
from django.urls import reverse
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.technicians.models import Technician
from dispatch.tickets.catalog import ticket_flags, ticket_marks
from dispatch.tickets.models import Priority, Ticket
from dispatch.tickets.selectors import SLA_WARNING_THRESHOLD_MINUTES, iso_utc, sla_snapshot
from dispatch.tickets.states import TERMINAL_STATES, TicketState

from .crews import crew_names_text, visit_parts
from .engine import slots_suggest, travel_minutes
from .models import BOOKED_STATUSES, Appointment, AppointmentStatus, Escalation, Shift, TimeOff

# The axis spans the day's shifts and bookings in whole hours (the working day, not 24 h of
# mostly night), at least MIN_AXIS_HOURS long; with nothing on the board it is 06:00–20:00.
AXIS_START_HOUR = 6
AXIS_END_HOUR = 20
MIN_AXIS_HOURS = 8
QUEUE_STATES = (TicketState.READY_TO_SCHEDULE, TicketState.SCHEDULE_PROPOSED, TicketState.PENDING_CUSTOMER_CONFIRMATION)
# Only these can be booked from the board (schedule.book's from-states).
BOOKABLE_STATES = frozenset({TicketState.READY_TO_SCHEDULE, TicketState.SCHEDULE_PROPOSED})
QUEUE_LIMIT = 60
ESCALATION_LIMIT = 8
PANEL_WINDOWS = 3
# Blocks drawn on the lanes: live bookings and the day's finished work (cancelled ones are history).
LANE_STATUSES = (*BOOKED_STATUSES, AppointmentStatus.COMPLETED)
PRIORITY_RANK = {Priority.EMERGENCY: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}
SLA_FLAGGED = ("warning", "breach")


# --- time -------------------------------------------------------------------------------------


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def company_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(company_zone()).date()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return company_zone()


def _at(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """`hour`:00 on `day` in `zone`; hour 24 is the next midnight."""
    return datetime.combine(day + timedelta(days=hour // 24), time(hour % 24), tzinfo=zone)


def _hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%H:%M}"


def _age(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return "now"
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _pct(value: float) -> str:
    # Formatted here, not in the template: a localized decimal comma would break the CSS.
    return f"{max(0.0, min(100.0, value)):.3f}"


@dataclass(frozen=True)
class Axis:
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def offset(self, moment: datetime) -> float:
        return (moment - self.start).total_seconds() / (self.end - self.start).total_seconds() * 100

    def span(self, start: datetime, end: datetime) -> tuple[str, str] | None:
        """(left, width) in percent of the axis, clipped to it; None when outside."""
        start, end = max(start, self.start), min(end, self.end)
        if end <= start:
            return None
        return _pct(self.offset(start)), _pct(self.offset(end) - self.offset(start))


# --- the day model ----------------------------------------------------------------------------


@dataclass
class Shade:
    left: str
    width: str
    kind: str  # "off" (outside the shift) or "timeoff"
    label: str = ""
    reason: str = ""
    # The part of the day it covers, in words: the phone's list has no axis to read it from.
    time_label: str = ""


@dataclass
class Block:
    appointment_id: uuid.UUID
    ticket_id: uuid.UUID
    ref: str
    summary: str
    state: str
    state_label: str
    state_css: str
    priority: str
    status: str
    start: datetime
    end: datetime
    start_iso: str
    end_iso: str
    time_label: str
    start_label: str
    end_label: str
    left: str
    width: str
    site_name: str
    city: str
    site_time_note: str
    admin_url: str
    movable: bool
    # The full street address: the phone's list of a technician's day shows it under the site.
    address: str = ""
    travel_minutes: int | None = None
    travel_from: str = ""
    travel_left: str = ""
    travel_width: str = ""
    travel_tight: bool = False
    # [(flag, mark)]: what other phases keep about the ticket (board_marks).
    marks: list = field(default_factory=list)
    # A part of a crew or multi-day visit: the key its sibling parts share, and where it sits
    # ("Crew of 2 with Ana Ruiz · Day 2 of 3").
    visit: str = ""
    visit_label: str = ""


@dataclass
class Lane:
    technician_id: uuid.UUID
    name: str
    regions: str
    shift_label: str
    shades: list[Shade] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    booked_minutes: int = 0
    travel_total: int = 0

    @property
    def job_count(self) -> int:
        return len(self.blocks)

    @property
    def booked_label(self) -> str:
        hours, minutes = divmod(self.booked_minutes, 60)
        return f"{hours}h{minutes:02d}" if minutes else f"{hours}h"


@dataclass
class QueueItem:
    ticket_id: uuid.UUID
    ref: str
    summary: str
    state: str
    state_label: str
    state_css: str
    priority: str
    priority_label: str
    incident_type: str
    site_name: str
    city: str
    age: str
    note: str
    sla_status: str
    sla_remaining: str
    # The moments the page's own clock counts from between refreshes (static/js/board.js).
    since_iso: str = ""
    sla_deadline_iso: str = ""
    marks: list = field(default_factory=list)


@dataclass
class EscalationItem:
    ticket_id: uuid.UUID
    ref: str
    kind: str
    kind_label: str
    reason: str
    age: str
    state_label: str
    since_iso: str = ""
    # A flag's mark listed here (a suggestion waiting) rather than an escalation: its badge.
    icon: str = ""


@dataclass
class Tick:
    label: str
    left: str


@dataclass
class TechnicianOption:
    id: uuid.UUID
    name: str
    selected: bool


@dataclass
class BoardDay:
    day: date
    today: date
    zone_name: str
    axis_start_iso: str
    axis_minutes: int
    ticks: list[Tick]
    now_left: str | None
    lanes: list[Lane]
    queue: list[QueueItem]
    queue_total: int
    escalations: list[EscalationItem]
    escalations_more: int
    technicians: list[TechnicianOption]
    filtered: bool
    generated_at: datetime

    @property
    def is_today(self) -> bool:
        return self.day == self.today

    @property
    def generated_iso(self) -> str:
        """When the server read this day (the page sets its clock by it)."""
        return iso_utc(self.generated_at)

    @property
    def sla_warning_minutes(self) -> int:
        return SLA_WARNING_THRESHOLD_MINUTES

    @property
    def prev_day(self) -> date:
        return self.day - timedelta(days=1)

    @property
    def next_day(self) -> date:
        return self.day + timedelta(days=1)

    @property
    def selected_ids(self) -> list[str]:
        return [str(option.id) for option in self.technicians if option.selected] if self.filtered else []

    @property
    def tech_query(self) -> str:
        """'&tech=…' for each filtered technician, to append to a ?day= link."""
        return "".join(f"&tech={key}" for key in self.selected_ids)

    @property
    def query(self) -> str:
        """This board's day and filter as a query string (the live partial and the panel keep them)."""
        return urlencode([("day", self.day.isoformat())] + [("tech", key) for key in self.selected_ids])


# --- shifts and time off ------------------------------------------------------------------------


def _shift_intervals(shifts: Iterable[Shift], day: date) -> list[tuple[datetime, datetime]]:
    """A technician's working periods touching `day`: each weekly shift on the day and the day
    before (a night shift runs past midnight), in its own working timezone."""
    intervals = []
    for shift in shifts:
        zone = _zone(shift.timezone)
        for worked in (day - timedelta(days=1), day, day + timedelta(days=1)):
            if worked.weekday() != shift.weekday:
                continue
            start = datetime.combine(worked, shift.start_time, tzinfo=zone)
            end_day = worked + timedelta(days=1) if shift.end_time <= shift.start_time else worked
            intervals.append((start, datetime.combine(end_day, shift.end_time, tzinfo=zone)))
    return sorted(intervals)


def _off_shades(axis: Axis, intervals: list[tuple[datetime, datetime]]) -> list[Shade]:
    """The axis minus the working periods: the parts of the lane drawn as off shift."""
    shades, cursor = [], axis.start
    for start, end in intervals:
        if start > cursor:
            span = axis.span(cursor, start)
            if span:
                shades.append(Shade(*span, kind="off", label="Off shift"))
        cursor = max(cursor, end)
    span = axis.span(cursor, axis.end)
    if span:
        shades.append(Shade(*span, kind="off", label="Off shift"))
    return shades


def _shift_label(
    intervals: list[tuple[datetime, datetime]], day_start: datetime, day_end: datetime, zone: ZoneInfo
) -> str:
    today = [(s, e) for s, e in intervals if s < day_end and e > day_start]
    if not today:
        return "Off today"
    return ", ".join(f"{_hhmm(s, zone)}–{_hhmm(e, zone)}" for s, e in today)


def _time_off_label(start: datetime, end: datetime, day_start: datetime, day_end: datetime, zone: ZoneInfo) -> str:
    """A period of time off as this day sees it: one that began or ends on another day is cut at midnight."""
    if start <= day_start and end >= day_end:
        return "All day"
    if start <= day_start:
        return f"Until {_hhmm(end, zone)}"
    if end >= day_end:
        return f"From {_hhmm(start, zone)}"
    return f"{_hhmm(start, zone)}–{_hhmm(end, zone)}"


# --- lanes --------------------------------------------------------------------------------------


def _site_time_note(site, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """The site's own clock, when it is not the company's."""
    site_zone = _zone(site.timezone)
    if site_zone.key == zone.key:
        return ""
    return f"{_hhmm(start, site_zone)}–{_hhmm(end, site_zone)} site time ({site_zone.key})"


def _point(lat: Any, lng: Any) -> tuple[float, float] | None:
    return (float(lat), float(lng)) if lat is not None and lng is not None else None


def _block(appointment: Appointment, axis: Axis, zone: ZoneInfo) -> Block | None:
    span = axis.span(appointment.start, appointment.end)
    if span is None:
        return None
    ticket = appointment.ticket
    return Block(
        appointment_id=appointment.id,
        ticket_id=ticket.id,
        ref=ticket.short_ref,
        summary=ticket.summary,
        state=ticket.state,
        state_label=ticket.get_state_display(),
        state_css=ticket.state.lower(),
        priority=ticket.priority,
        status=appointment.status,
        start=appointment.start,
        end=appointment.end,
        start_iso=appointment.start.isoformat(),
        end_iso=appointment.end.isoformat(),
        time_label=f"{_hhmm(appointment.start, zone)}–{_hhmm(appointment.end, zone)}",
        start_label=_hhmm(appointment.start, zone),
        end_label=_hhmm(appointment.end, zone),
        left=span[0],
        width=span[1],
        site_name=ticket.site.name,
        city=ticket.site.city,
        site_time_note=_site_time_note(ticket.site, appointment.start, appointment.end, zone),
        admin_url=reverse("admin:tickets_ticket_change", args=[ticket.id]),
        address=ticket.site.address,
        # What schedule.move accepts: a confirmed booking of a job not yet dispatched.
        movable=appointment.status == AppointmentStatus.CONFIRMED and ticket.state == TicketState.SCHEDULED,
    )


def _travel_mark(lane: Lane, technician: Technician, appointments: list[Appointment], axis: Axis) -> None:
    """Draw the drive before each job (from the previous job's site, or from home for the first)."""
    previous_end, previous_point, previous_name = None, _point(technician.home_lat, technician.home_lng), "home"
    by_id = {block.appointment_id: block for block in lane.blocks}
    for appointment in appointments:
        site = appointment.ticket.site
        here = _point(site.lat, site.lng)
        block = by_id.get(appointment.id)
        if block is not None:
            # The engine's own estimate, so a gap drawn here is the gap the rules enforce.
            minutes = travel_minutes(previous_point, here)
            block.travel_minutes = minutes
            block.travel_from = previous_name
            lane.travel_total += minutes
            if minutes > 0:
                span = axis.span(appointment.start - timedelta(minutes=minutes), appointment.start)
                if span:
                    block.travel_left, block.travel_width = span
                # The drive does not fit between the previous job and this one.
                block.travel_tight = (
                    previous_end is not None and appointment.start - timedelta(minutes=minutes) < previous_end
                )
        previous_end, previous_point, previous_name = appointment.end, here, site.name


def _axis_hours(
    spans: list[tuple[datetime, datetime]], day_start: datetime, day_end: datetime, zone: ZoneInfo
) -> tuple[int, int]:
    """(first, last) whole hours of the day covering every span that touches it."""
    hours = []
    for start, end in spans:
        if start < day_end and end > day_start:
            local_start, local_end = max(start, day_start).astimezone(zone), min(end, day_end).astimezone(zone)
            last = 24 if end >= day_end else local_end.hour + (1 if local_end.minute or local_end.second else 0)
            hours.append((local_start.hour, last))
    if not hours:
        return AXIS_START_HOUR, AXIS_END_HOUR
    first, last = min(h[0] for h in hours), max(h[1] for h in hours)
    while last - first < MIN_AXIS_HOURS:
        # Grow evenly around the day, never past midnight.
        if first > 0:
            first -= 1
        if last - first < MIN_AXIS_HOURS and last < 24:
            last += 1
    return first, last


def _priority_order():
    return Case(
        *[When(priority=priority, then=Value(rank)) for priority, rank in PRIORITY_RANK.items()],
        default=Value(len(PRIORITY_RANK)),
        output_field=IntegerField(),
    )


def _queue_note(ticket: Ticket, zone: ZoneInfo) -> str:
    if ticket.state == TicketState.SCHEDULE_PROPOSED and ticket.scheduled_start:
        local = ticket.scheduled_start.astimezone(zone)
        return f"Proposed to the customer, first window {local:%a} {local:%H:%M}"
    if ticket.state == TicketState.PENDING_CUSTOMER_CONFIRMATION:
        return "Waiting for the customer's confirmation"
    return ""


# The rows the live part shows, shared by board_day (which lays them out) and board_version (which
# only fingerprints them), so the two can never disagree about what is on the board.


def _shown(technicians: list, wanted: set[str], *, key) -> list:
    """The filtered technicians; all of them when the filter names none that is active."""
    return [t for t in technicians if not wanted or str(key(t)) in wanted] or technicians


def _lane_appointments(technician_ids, day_start: datetime, day_end: datetime):
    return Appointment.objects.filter(
        technician_id__in=technician_ids, status__in=LANE_STATUSES, start__lt=day_end, end__gt=day_start
    ).exclude(ticket__state=TicketState.CANCELLED)


def _day_time_off(technician_ids, day_start: datetime, day_end: datetime):
    return TimeOff.objects.filter(technician_id__in=technician_ids, start__lt=day_end, end__gt=day_start)


def _queue():
    """The unscheduled queue in the board's order: tickets waiting to be booked, with no booking."""
    booked = Appointment.objects.filter(ticket=OuterRef("pk"), status__in=BOOKED_STATUSES)
    return (
        Ticket.objects.filter(state__in=QUEUE_STATES)
        .annotate(booked=Exists(booked), rank=_priority_order())
        .filter(booked=False)
        .order_by("rank", "created_at", "id")
    )


def _open_escalations():
    return (
        Escalation.objects.filter(resolved_at__isnull=True)
        .exclude(ticket__state__in=TERMINAL_STATES)
        .order_by("created_at", "id")
    )


def board_day(*, day: date, technician_ids: Iterable[Any] = (), now: datetime | None = None) -> BoardDay:
    """The board for one day in the company's timezone (a constant number of queries)."""
    now = now or timezone.now()
    zone = company_zone()
    day_start, day_end = _at(day, 0, zone), _at(day, 24, zone)
    wanted = {str(key) for key in technician_ids}

    technicians = list(
        Technician.objects.filter(is_active=True).prefetch_related("regions").order_by("display_name", "id")
    )
    shown = _shown(technicians, wanted, key=lambda t: t.pk)
    shown_ids = [t.pk for t in shown]
    shifts: dict[uuid.UUID, list[Shift]] = {}
    for shift in Shift.objects.filter(technician_id__in=shown_ids):
        shifts.setdefault(shift.technician_id, []).append(shift)
    time_off: dict[uuid.UUID, list[TimeOff]] = {}
    for period in _day_time_off(shown_ids, day_start, day_end):
        time_off.setdefault(period.technician_id, []).append(period)
    appointments: dict[uuid.UUID, list[Appointment]] = {}
    for appointment in (
        _lane_appointments(shown_ids, day_start, day_end)
        .select_related("ticket", "ticket__site")
        .order_by("start", "id")
    ):
        appointments.setdefault(appointment.technician_id, []).append(appointment)
    parts = visit_parts(a for rows in appointments.values() for a in rows)

    intervals = {t.pk: _shift_intervals(shifts.get(t.pk, []), day) for t in shown}
    first_hour, last_hour = _axis_hours(
        [(a.start, a.end) for rows in appointments.values() for a in rows]
        + [pair for rows in intervals.values() for pair in rows],
        day_start,
        day_end,
        zone,
    )
    axis = Axis(_at(day, first_hour, zone), _at(day, last_hour, zone))

    lanes = []
    for technician in shown:
        lane = Lane(
            technician_id=technician.pk,
            name=technician.display_name,
            regions=", ".join(region.name for region in technician.regions.all()),
            shift_label=_shift_label(intervals[technician.pk], day_start, day_end, zone),
            shades=_off_shades(axis, intervals[technician.pk]),
        )
        for period in time_off.get(technician.pk, []):
            span = axis.span(period.start, period.end)
            if span:
                lane.shades.append(
                    Shade(
                        *span,
                        kind="timeoff",
                        label="Time off",
                        reason=period.reason,
                        time_label=_time_off_label(period.start, period.end, day_start, day_end, zone),
                    )
                )
        rows = appointments.get(technician.pk, [])
        for appointment in rows:
            block = _block(appointment, axis, zone)
            if block is not None:
                part = parts.get(appointment.id)
                if part is not None:
                    block.visit, block.visit_label = str(part.visit), part.label
                lane.blocks.append(block)
                lane.booked_minutes += int((appointment.end - appointment.start).total_seconds() // 60)
        _travel_mark(lane, technician, rows, axis)
        lanes.append(lane)

    queue_rows = list(_queue().select_related("site")[: QUEUE_LIMIT + 1])
    queue = []
    for ticket in queue_rows[:QUEUE_LIMIT]:
        sla = sla_snapshot(ticket, now)
        queue.append(
            QueueItem(
                ticket_id=ticket.id,
                ref=ticket.short_ref,
                summary=ticket.summary,
                state=ticket.state,
                state_label=ticket.get_state_display(),
                state_css=ticket.state.lower(),
                priority=ticket.priority,
                priority_label=ticket.get_priority_display(),
                incident_type=ticket.incident_type.replace("_", " ").capitalize(),
                site_name=ticket.site.name,
                city=ticket.site.city,
                age=_age(ticket.created_at, now),
                note=_queue_note(ticket, zone),
                sla_status=sla["sla_status"],
                sla_remaining=sla["sla_timer_remaining"],
                since_iso=iso_utc(ticket.created_at),
                sla_deadline_iso=sla["sla_deadline_at"],
            )
        )

    open_escalations = list(_open_escalations().select_related("ticket")[: ESCALATION_LIMIT + 1])
    escalations = [
        EscalationItem(
            ticket_id=escalation.ticket_id,
            ref=escalation.ticket.short_ref,
            kind=escalation.kind,
            kind_label=escalation.get_kind_display(),
            reason=str((escalation.details or {}).get("reason") or escalation.ticket.summary),
            age=_age(escalation.created_at, now),
            state_label=escalation.ticket.get_state_display(),
            since_iso=iso_utc(escalation.created_at),
        )
        for escalation in open_escalations[:ESCALATION_LIMIT]
    ]

    ticks = [
        Tick(f"{hour % 24:02d}", _pct(axis.offset(_at(day, hour, zone)))) for hour in range(first_hour, last_hour + 1)
    ]
    now_left = _pct(axis.offset(now)) if axis.start <= now <= axis.end else None
    return BoardDay(
        day=day,
        today=company_today(now),
        zone_name=zone.key,
        axis_start_iso=axis.start.isoformat(),
        axis_minutes=axis.minutes,
        ticks=ticks,
        now_left=now_left,
        lanes=lanes,
        queue=queue,
        queue_total=len(queue_rows) if len(queue_rows) <= QUEUE_LIMIT else QUEUE_LIMIT,
        escalations=escalations,
        escalations_more=max(0, len(open_escalations) - ESCALATION_LIMIT),
        technicians=[TechnicianOption(t.pk, t.display_name, str(t.pk) in wanted) for t in technicians],
        filtered=bool(wanted) and len(shown) < len(technicians),
        generated_at=now,
    )


# --- the live part's version -------------------------------------------------------------------

# Part of every version: bump it when the live partial or the day model starts showing something
# else for the same rows, so open boards re-render once after the deploy.
LIVE_FORMAT = 2


def _plain(value: Any) -> Any:
    """A row value as JSON: dicts keep their content whatever their key order (sort_keys below)."""
    if value is None or isinstance(value, (bool, int, str, dict, list)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()  # to the microsecond: two saves in one millisecond differ
    return str(value)  # UUID, Decimal, time


def _plain_deep(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain_deep(item) for item in value]
    return _plain(value)


def _rows(queryset, *, ordered: bool) -> list[list]:
    """The rows as plain lists; a set (ordered=False) is sorted, so its order never matters."""
    rows = [[_plain(value) for value in row] for row in queryset]
    if not ordered:
        rows.sort(key=lambda row: json.dumps(row, sort_keys=True, default=str))
    return rows


def board_version(*, day: date, technician_ids: Iterable[Any] = (), now: datetime | None = None) -> str:
    """A short digest of what the live part (_live.html) shows for this day and filter.

    It changes when a lane's technician, shifts or time off change; when any of the day's bookings
    or the ticket behind one changes (every executor change saves the ticket's updated_at; a hold or
    a move saves the appointment's); when the queue's rows, their order or their sites change; when
    an escalation opens, resolves or is reworded; and when the day becomes or stops being today.
    The clocks (the now line, ages, SLA countdowns) are not in it: the page moves them itself.

    Six small queries, each on an index and none rendering anything: the active technicians with
    their regions, the shown technicians' shifts on the weekdays that touch the day, their time off
    on the day, the keys of the day's bookings, the keys of the queue's first rows and of the open
    escalations."""
    now = now or timezone.now()
    zone = company_zone()
    day_start, day_end = _at(day, 0, zone), _at(day, 24, zone)
    wanted = {str(key) for key in technician_ids}

    technician_rows = _rows(
        Technician.objects.filter(is_active=True)
        .order_by()
        .values_list("id", "display_name", "home_lat", "home_lng", "regions__name"),
        ordered=False,
    )
    shown_ids = sorted({row[0] for row in _shown(technician_rows, wanted, key=lambda row: row[0])})
    weekdays = sorted({(day + timedelta(days=shift)).weekday() for shift in (-1, 0, 1)})
    parts = {
        "format": LIVE_FORMAT,
        "day": day.isoformat(),
        "today": day == company_today(now),
        "technicians": [row for row in technician_rows if row[0] in shown_ids],
        "shifts": _rows(
            Shift.objects.filter(technician_id__in=shown_ids, weekday__in=weekdays)
            .order_by()
            .values_list("technician_id", "weekday", "start_time", "end_time", "timezone"),
            ordered=False,
        ),
        "time_off": _rows(
            _day_time_off(shown_ids, day_start, day_end)
            .order_by()
            .values_list("id", "technician_id", "start", "end", "reason"),
            ordered=False,
        ),
        "appointments": _rows(
            _lane_appointments(shown_ids, day_start, day_end)
            .order_by()
            .values_list(
                "id",
                "technician_id",
                "status",
                "start",
                "end",
                "updated_at",
                "ticket_id",
                "ticket__state",
                "ticket__priority",
                "ticket__updated_at",
                # Sites keep no updated_at: the fields the lanes show of them.
                "ticket__site__name",
                "ticket__site__address_line1",
                "ticket__site__address_line2",
                "ticket__site__city",
                "ticket__site__region",
                "ticket__site__postal_code",
                "ticket__site__timezone",
                "ticket__site__lat",
                "ticket__site__lng",
            ),
            ordered=False,
        ),
        "queue": _rows(
            _queue().values_list("id", "state", "priority", "updated_at", "site__name", "site__city")[
                : QUEUE_LIMIT + 1
            ],
            ordered=True,
        ),
        "escalations": _rows(
            _open_escalations().values_list(
                "id", "kind", "details", "created_at", "ticket_id", "ticket__state", "ticket__updated_at"
            )[: ESCALATION_LIMIT + 1],
            ordered=True,
        ),
        # What other phases keep beside the tickets without changing them (a suggestion left for
        # a dispatcher): one small read per flag that offers a digest.
        "flags": {flag.key: _plain_deep(flag.digest()) for flag in ticket_flags() if flag.digest is not None},
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


# --- the side panel -----------------------------------------------------------------------------


@dataclass
class PanelWindow:
    technician_id: uuid.UUID
    technician_name: str
    start_iso: str
    end_iso: str
    day_iso: str
    label: str
    arrival: str
    reason: str
    travel_minutes: int
    # A crew or multi-day window: the whole crew's ids (lead first), booked together, and what
    # the window books besides its first day ("with Ana Ruiz · 3 days, Tue Mar 3 – Thu Mar 5").
    crew_ids: tuple[str, ...] = ()
    visit_label: str = ""


@dataclass
class Panel:
    ticket: Ticket
    admin_url: str
    state_css: str
    address: str
    site_time_note: str
    bookable: bool
    not_bookable_reason: str
    booking: dict | None
    windows: list[PanelWindow]
    explanation: str
    refusal: dict | None
    booked: dict | None


def _window_label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    local = start.astimezone(zone)
    return f"{local:%a %b} {local.day}, {_hhmm(start, zone)}–{_hhmm(end, zone)}"


def _visit_window_label(window, zone: ZoneInfo) -> str:
    """'with Ana Ruiz · 3 days, to Thu Mar 5' for a crew or multi-day window; '' otherwise."""
    parts = []
    if len(window.crew) > 1:
        parts.append("with " + crew_names_text([name for _id, name in window.crew[1:]]))
    if len(window.days) > 1:
        last = window.days[-1][0].astimezone(zone)
        parts.append(f"{len(window.days)} days, to {last:%a %b} {last.day}")
    return " · ".join(parts)


def _not_bookable(ticket: Ticket) -> str:
    if ticket.state == TicketState.PENDING_CUSTOMER_CONFIRMATION:
        return "Held for the customer's confirmation: release or roll back the hold on the ticket page to book it here."
    return f"{ticket.get_state_display()}: only tickets ready to schedule or proposed can be booked from the board."


def _technician_keys(values: Iterable[Any]) -> list[uuid.UUID]:
    keys = []
    for value in values:
        try:
            keys.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except (ValueError, TypeError, AttributeError):
            continue
    return keys


def board_ticket_panel(
    *,
    ticket_id: Any,
    technician_ids: Iterable[Any] = (),
    now: datetime | None = None,
    refusal: DispatchError | None = None,
    booked: dict | None = None,
) -> Panel | None:
    """One ticket for the side panel: what it is, its booking if any, and the engine's best windows
    (None when there is no such ticket)."""
    now = now or timezone.now()
    zone = company_zone()
    try:
        key = ticket_id if isinstance(ticket_id, uuid.UUID) else uuid.UUID(str(ticket_id))
    except (ValueError, TypeError, AttributeError):
        return None
    ticket = Ticket.objects.select_related("site").filter(pk=key).first()
    if ticket is None:
        return None
    appointment = (
        Appointment.objects.filter(ticket=ticket, status__in=BOOKED_STATUSES)
        .select_related("technician")
        .order_by("start")
        .first()
    )
    booking = None
    if appointment is not None:
        part = visit_parts([appointment]).get(appointment.id)
        booking = {
            "technician": appointment.technician.display_name if appointment.technician else "Unassigned",
            "visit": part.label if part else "",
            "label": _window_label(appointment.start, appointment.end, zone),
            "status": appointment.get_status_display(),
            "day_iso": appointment.start.astimezone(zone).date().isoformat(),
        }
    bookable = ticket.state in BOOKABLE_STATES and appointment is None
    windows, explanation = [], ""
    if ticket.state in QUEUE_STATES and appointment is None:
        # The board's technician filter narrows the candidates too.
        wanted = _technician_keys(technician_ids)
        suggestion = slots_suggest(ticket=ticket, limit=PANEL_WINDOWS, now=now, technician_ids=wanted or None)
        windows = [
            PanelWindow(
                technician_id=window.technician_id,
                technician_name=window.technician_name,
                start_iso=window.start.isoformat(),
                end_iso=window.end.isoformat(),
                day_iso=window.start.astimezone(zone).date().isoformat(),
                label=_window_label(window.start, window.end, zone),
                arrival=f"arrive {_hhmm(window.arrival_start, zone)}–{_hhmm(window.arrival_end, zone)}",
                # The panel names the technician (or the crew) on the line above.
                reason=window.reason.removeprefix(f"{window.technician_name}: ").removeprefix(
                    f"{crew_names_text([name for _id, name in window.crew])}: "
                ),
                travel_minutes=window.travel_minutes,
                crew_ids=tuple(str(tech_id) for tech_id, _name in window.crew),
                visit_label=_visit_window_label(window, zone),
            )
            for window in suggestion.windows
        ]
        explanation = (
            "" if windows else (suggestion.explanation or "No technician can take this job in the next two weeks.")
        )
    site = ticket.site
    return Panel(
        ticket=ticket,
        admin_url=reverse("admin:tickets_ticket_change", args=[ticket.id]),
        state_css=ticket.state.lower(),
        address=site.address,
        site_time_note="" if _zone(site.timezone).key == zone.key else f"Site clock: {site.timezone}",
        bookable=bookable,
        not_bookable_reason="" if bookable or appointment is not None else _not_bookable(ticket),
        booking=booking,
        windows=windows,
        explanation=explanation,
        refusal=(
            {"code": refusal.code, "message": refusal.message, "reasons": refusal.details.get("reasons", [])}
            if refusal is not None
            else None
        ),
        booked=booked,
    )


def board_marks(board) -> None:
    """Put on the day's blocks and the queue's rows the flags other phases keep about their tickets
    (closeout's missing evidence, the autopilot's bookings), as `.marks`: one read of the catalog
    for all of them, and none when no ticket shown is in a state any flag is about.

    A flag that asks for attention (a suggestion waiting for a dispatcher) also lists its tickets
    under "Needs attention", after the escalations. It is read once, for every ticket it flags
    (a few reads however busy the day), and its marks go on the blocks and rows from that read."""
    flags = ticket_flags()
    listed = {flag.key: _attention(flag, board) for flag in flags if flag.attention}
    others = [flag for flag in flags if not flag.attention]
    states = {state for flag in others for state in flag.states}
    items = [block for lane in board.lanes for block in lane.blocks] + list(board.queue)
    wanted = {item.ticket_id for item in items if item.state in states}
    marks = (
        ticket_marks(Ticket.objects.filter(pk__in=wanted).only("id", "state", "incident_type"), others)
        if wanted
        else {}
    )
    for item in items:
        found = {flag.key: mark for flag, mark in marks.get(item.ticket_id, [])}
        for key, flagged in listed.items():
            if item.ticket_id in flagged:
                found[key] = flagged[item.ticket_id]
        item.marks = [(flag, found[flag.key]) for flag in flags if flag.key in found]


def _attention(flag, board) -> dict:
    """Every ticket the flag flags, with its mark ({ticket id: mark}); the first of them, oldest
    ticket first, listed under "Needs attention"."""
    flagged = list(flag.flagged_ids(Ticket.objects.filter(state__in=list(flag.states))))
    if not flagged:
        return {}
    tickets = list(
        Ticket.objects.filter(pk__in=flagged, state__in=list(flag.states))
        .only("id", "state", "incident_type", "summary", "created_at")
        .order_by("created_at", "id")
    )
    marks = flag.marks(tickets)
    now, shown = board.generated_at, 0
    for ticket in tickets:
        mark = marks.get(ticket.pk)
        if mark is None:
            continue
        if shown == ESCALATION_LIMIT:
            board.escalations_more += 1
            continue
        shown += 1
        since = mark.since or ticket.created_at
        board.escalations.append(
            EscalationItem(
                ticket_id=ticket.pk,
                ref=ticket.short_ref,
                kind=flag.key,
                kind_label=flag.label[:1].upper() + flag.label[1:],
                reason=mark.detail or mark.text,
                age=_age(since, now),
                state_label=ticket.get_state_display(),
                since_iso=iso_utc(since),
                icon=flag.icon,
            )
        )
    return marks


def ticket_board_marks(ticket) -> list:
    """The flags' marks of one ticket (the board's side panel)."""
    return ticket_marks([ticket]).get(ticket.pk, [])
