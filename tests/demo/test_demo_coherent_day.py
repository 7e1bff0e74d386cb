"""The demo tells one coherent day whatever the weekday and hour `make run` is started at.

Each case loads the demo with the clock stopped at that moment and reads it as the dispatcher
would: the board's lanes for today, every booking against its technician's shifts and time
off, every customer message against the windows it speaks of, and the README's own claims
about what `load_demo` makes.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from dispatch.common.roles import role_of_user
from dispatch.messaging.models import OutboundMessage
from dispatch.scheduling.board import board_day
from dispatch.scheduling.engine import step_minutes
from dispatch.scheduling.models import (
    Appointment,
    AppointmentStatus,
    CustomerNotice,
    ScheduleProposal,
    Shift,
    TimeOff,
)
from dispatch.technicians.models import Technician
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.states import TicketState

pytestmark = pytest.mark.django_db

LA = ZoneInfo("America/Los_Angeles")
README = Path(__file__).resolve().parents[2] / "README.md"

# Monday 7 December 2026 and the six days after it, at hours across a day: before the shifts
# start, mid-morning, mid-afternoon, and late evening after every shift has ended.
MONDAY = date(2026, 12, 7)
MOMENTS = [
    pytest.param(MONDAY + timedelta(days=offset), hour, id=f"{(MONDAY + timedelta(days=offset)):%a}-{hour:02d}h")
    for offset, hours in enumerate(((10, 22), (6, 13), (16,), (11, 21), (8, 17), (10, 22), (9, 19)))
    for hour in hours
]

# States in which the job has begun (its window has started) and those in which it has not.
BEGUN = {
    TicketState.ON_SITE,
    TicketState.IN_PROGRESS,
    TicketState.ON_HOLD,
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
    TicketState.INVOICED,
    TicketState.CLOSED,
}
AHEAD = {TicketState.SCHEDULE_PROPOSED, TicketState.SCHEDULED, TicketState.PENDING_CUSTOMER_CONFIRMATION}
BOOKED = (AppointmentStatus.CONFIRMED, AppointmentStatus.HELD, AppointmentStatus.COMPLETED)


def _load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def _working_periods(technician: Technician, around: date) -> list[tuple[datetime, datetime]]:
    """The technician's shifts from a fortnight before `around` to a fortnight after it."""
    periods = []
    for shift in Shift.objects.filter(technician=technician):
        zone = ZoneInfo(shift.timezone)
        for offset in range(-14, 15):
            day = around + timedelta(days=offset)
            if day.weekday() != shift.weekday:
                continue
            start = datetime.combine(day, shift.start_time, tzinfo=zone)
            end_day = day + timedelta(days=1) if shift.end_time <= shift.start_time else day
            periods.append((start, datetime.combine(end_day, shift.end_time, tzinfo=zone)))
    return periods


def _booking_contradictions(now: datetime) -> list[str]:
    found = []
    today = now.astimezone(LA).date()
    bookings = (
        Appointment.objects.filter(status__in=BOOKED, technician__isnull=False)
        .select_related("ticket", "technician")
        .order_by("start")
    )
    for booking in bookings:
        ticket, technician = booking.ticket, booking.technician
        what = (
            f"{ticket.summary!r} ({ticket.state}, {technician.display_name}, {booking.start.astimezone(LA):%a %H:%M})"
        )
        periods = _working_periods(technician, today)
        if not any(start <= booking.start and booking.end <= end for start, end in periods):
            found.append(f"{what} lies outside the technician's shifts")
        if TimeOff.objects.filter(technician=technician, start__lt=booking.end, end__gt=booking.start).exists():
            found.append(f"{what} lies in the technician's time off")
        if booking.start.minute % step_minutes() or booking.start.second:
            found.append(f"{what} starts off the slot grid")
        if ticket.state in BEGUN and booking.start > now:
            found.append(f"{what} has begun but its window is still ahead")
        if ticket.state in AHEAD and booking.start <= now:
            found.append(f"{what} has not begun but its window has")
        if ticket.state == TicketState.DISPATCHED:
            dispatched = ticket.audit_events.filter(tool_name="assignment.dispatch").latest("seq").created_at
            if booking.end <= dispatched:
                found.append(f"{what} was dispatched after its window ended")
    return found


def _board_contradictions(now: datetime) -> list[str]:
    """Lanes of today's board: a technician shown off today has no job on it, none in time off."""
    found = []
    for lane in board_day(day=now.astimezone(LA).date(), now=now).lanes:
        if lane.shift_label == "Off today" and lane.blocks:
            found.append(f"{lane.name} is off today yet has {[b.summary for b in lane.blocks]}")
        for block in lane.blocks:
            if TimeOff.objects.filter(
                technician_id=lane.technician_id, start__lt=block.end, end__gt=block.start
            ).exists():
                found.append(f"{block.summary!r} sits in {lane.name}'s time off")
    return found


def _window_starts(notice: CustomerNotice) -> list[datetime]:
    """The start of every window a customer message speaks of."""
    if notice.kind in (CustomerNotice.Kind.PROPOSAL, CustomerNotice.Kind.PROPOSAL_REMINDER):
        proposal = ScheduleProposal.objects.get(pk=notice.occasion)
        return [datetime.fromisoformat(option["start"]) for option in proposal.options]
    if notice.kind in (CustomerNotice.Kind.BOOKING, CustomerNotice.Kind.REMINDER):
        return [datetime.fromisoformat(notice.occasion.split("@", 1)[1])]
    return []


def _message_contradictions() -> list[str]:
    found = []
    notices = CustomerNotice.objects.filter(message__isnull=False).select_related("message", "ticket")
    for notice in notices:
        sent = notice.message.created_at
        for start in _window_starts(notice):
            if start.minute % step_minutes() or start.second:
                found.append(
                    f"{notice.message.template} to {notice.ticket.summary!r} offers a window off the slot grid"
                )
            if start <= sent:
                found.append(
                    f"{notice.message.template} to {notice.ticket.summary!r} at {sent.astimezone(LA):%a %H:%M} "
                    f"speaks of a window that began {start.astimezone(LA):%a %H:%M}"
                )
    for ticket in Ticket.objects.all():
        messages = list(OutboundMessage.objects.filter(ticket=ticket).order_by("created_at", "id"))
        templates = [m.template for m in messages]
        for confirmed in (m for m in messages if m.template == "schedule_confirmed"):
            asked = [m for m in messages if m.template == "proposal_windows"]
            if asked and not any(m.created_at < confirmed.created_at for m in asked):
                found.append(f"{ticket.summary!r}: the confirmation precedes the options it answers: {templates}")
        # The messages were sent in the order the ticket's trail tells its story.
        events = list(ticket.audit_events.order_by("seq").values_list("created_at", flat=True))
        if events != sorted(events):
            found.append(f"{ticket.summary!r}: its audit events are out of time order")
    return found


def _readme_demo_claims() -> list[str]:
    """Check what the README says load_demo makes: the logins, the technicians, the lifecycle."""
    text = README.read_text()
    found = []
    logins = re.findall(r"^\| ([a-z ()]+?) \| `([\w.]+)` \| `([\w-]+)` \|$", text, flags=re.MULTILINE)
    assert len(logins) >= 6, "the README's demo logins table was not found"
    for role, username, password in logins:
        user = authenticate(RequestFactory().post("/admin/login/"), username=username, password=password)
        if user is None:
            found.append(f"README login {username} / {password} does not work")
        elif role_of_user(user) != role.split(" ")[0]:
            found.append(f"README login {username} is not a {role}")
    others = re.search(r"The other demo technicians \((.+?)\)\s+share the password `([\w-]+)`", text, re.DOTALL)
    assert others, "the README's line on the other demo technicians was not found"
    for username in re.findall(r"`([\w.]+)`", others.group(1)):
        if authenticate(RequestFactory().post("/tech/login/"), username=username, password=others.group(2)) is None:
            found.append(f"README technician {username} / {others.group(2)} does not work")
    for technician in Technician.objects.all():
        if not (technician.skills.exists() and technician.regions.exists()):
            found.append(f"{technician.display_name} lacks skills or regions")
    states = set(Ticket.objects.values_list("state", flat=True))
    lifecycle = {
        TicketState.NEW,
        TicketState.SCHEDULED,
        TicketState.DISPATCHED,
        TicketState.IN_PROGRESS,
        TicketState.VERIFIED,
        TicketState.INVOICED,
        TicketState.CLOSED,
    }
    if not lifecycle <= states:
        found.append(f"tickets do not span the lifecycle: missing {sorted(lifecycle - states)}")
    if AuditEvent.objects.filter(tool_name="ticket.create").count() != Ticket.objects.count():
        found.append("some demo tickets were not made by the services")
    if "0 ticket(s) created now" not in _load():
        found.append("running load_demo again changed something")
    return found


@pytest.mark.parametrize(("day", "hour"), MOMENTS)
def test_demo_is_a_coherent_day_on_every_weekday(day, hour):
    moment = datetime(day.year, day.month, day.day, hour, 0, tzinfo=LA)
    with time_machine.travel(moment, tick=False):
        _load()
        now = timezone.now()
        contradictions = (
            _booking_contradictions(now)
            + _board_contradictions(now)
            + _message_contradictions()
            + _readme_demo_claims()
        )
    assert not contradictions, "\n".join(contradictions)
