"""What the customer is told about their booking, written to the outbox with the business change.

Every function here runs inside the caller's transaction (a ticket executor's `apply`, with the
ticket row locked) and queues at most one message per occasion: the CustomerNotice ledger has a
unique (kind, occasion) key, so a proposal, a booking, a departure or a delay is announced once
even when two code paths (a service hook and a reply handler) both ask for it.

Messages go on the channel the customer uses: their phone by SMS, else their email; a reply to
an inbound message prefers the channel it came in on. Times are written in the site's timezone,
in plain ASCII (an en dash would turn an SMS into the 70-character UCS-2 encoding).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dispatch.common.errors import DispatchError
from dispatch.common.languages import ENGLISH, SPANISH, language_clean
from dispatch.messaging.services import outbox_enqueue
from dispatch.tickets import catalog
from dispatch.tickets.models import Site, Ticket

from .appointments import told_window
from .engine import arrival_window_minutes
from .models import Appointment, CustomerNotice, Departure, ScheduleProposal

log = logging.getLogger(__name__)

Kind = CustomerNotice.Kind

CHANNELS = ("SMS", "EMAIL")


# --- Phrasing -----------------------------------------------------------------------------------


def site_zone(site: Site) -> ZoneInfo:
    """The site's timezone (the company's when the site names none or an unknown one)."""
    try:
        return ZoneInfo(site.timezone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def _clock(moment: datetime) -> tuple[str, str]:
    """("9", "AM") or ("9:30", "AM"): minutes only when there are any."""
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes}", "AM" if moment.hour < 12 else "PM"


# Days and months as a Spanish text writes them (plain letters, see the module docstring).
_SPANISH_DAYS = ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo")
_SPANISH_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")
# The few words around the times, per language.
_WORDS = {
    ENGLISH: {"tomorrow": "tomorrow", "about": "about", "technician": "Your technician"},
    SPANISH: {"tomorrow": "mañana", "about": "unos", "technician": "Su tecnico"},
}


def _day(moment: datetime, language: str = ENGLISH) -> str:
    if language == SPANISH:
        return f"{_SPANISH_DAYS[moment.weekday()]} {moment.day} {_SPANISH_MONTHS[moment.month - 1]}"
    return f"{moment:%a %b} {moment.day}"


def window_phrase(start: datetime, end: datetime, zone: ZoneInfo, *, language: str = ENGLISH) -> str:
    """ "Tue Mar 3, 9-11 AM", "Tue Mar 3, 11:30 AM-1 PM" or, overnight, "Tue Mar 3, 10 PM - Wed Mar 4, 2 AM"
    ("martes 3 mar, 9-11 AM" in Spanish)."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    (start_clock, start_half), (end_clock, end_half) = _clock(local_start), _clock(local_end)
    first, last = _day(local_start, language), _day(local_end, language)
    if local_start.date() != local_end.date():
        return f"{first}, {start_clock} {start_half} - {last}, {end_clock} {end_half}"
    if start_half == end_half:
        return f"{first}, {start_clock}-{end_clock} {end_half}"
    return f"{first}, {start_clock} {start_half}-{end_clock} {end_half}"


def moment_phrase(moment: datetime, zone: ZoneInfo, *, now: datetime | None = None, language: str = ENGLISH) -> str:
    """ "10:25 AM" today, "Wed Mar 4, 8 AM" on another day (as the site's clock shows it)."""
    local = moment.astimezone(zone)
    clock, half = _clock(local)
    today = (now or timezone.now()).astimezone(zone).date()
    if local.date() == today:
        return f"{clock} {half}"
    return f"{_day(local, language)}, {clock} {half}"


def visit_phrase(incident_type: str | None, *, language: str = ENGLISH) -> str:
    """What a window of this job type books besides an arrival: " (2 technicians, 3 working days
    from then)"; "" for a one-technician, one-day job. From the job type's template, never from
    the proposal's options (a proposer's free text does not reach the customer)."""
    size, days = catalog.incident_crew(incident_type) if incident_type else (1, 1)
    parts = []
    if size > 1:
        parts.append(f"{size} técnicos" if language == SPANISH else f"{size} technicians")
    if days > 1:
        parts.append(
            f"{days} días laborables desde entonces" if language == SPANISH else f"{days} working days from then"
        )
    return f" ({', '.join(parts)})" if parts else ""


def options_phrase(
    options: Iterable[Mapping[str, Any]], zone: ZoneInfo, *, language: str = ENGLISH, visit: str = ""
) -> str:
    """The proposal's arrival windows numbered as the customer answers them: "1) Tue Mar 3, 9-11 AM; 2) ...".
    A window that has begun is left out and the others keep their numbers: the customer answers
    with the number the proposal gave each window.

    `visit`: visit_phrase of the job, said after each window."""
    parts = []
    arrival = timedelta(minutes=arrival_window_minutes())
    now = timezone.now()
    for number, option in enumerate(options, start=1):
        start, end = parse_datetime(option["start"]), parse_datetime(option["end"])
        if start is not None and start <= now:
            continue
        # The customer chooses when the technician arrives (the job's own span when arrival
        # windows are switched off), the same window the booking's confirmation then states.
        window = window_phrase(start, start + arrival if arrival else end, zone, language=language)
        parts.append(f"{number}) {window}{visit}")
    return "; ".join(parts)


def _language(ticket: Ticket) -> str:
    return language_clean(ticket.customer_language)


# --- The one way a customer message is queued ------------------------------------------------------


def _routes(ticket: Ticket, prefer: str | None) -> list[tuple[str, str]]:
    """(channel, recipient) pairs to try, in order: the preferred channel first, then SMS, then email."""
    addresses = {"SMS": (ticket.customer_phone or "").strip(), "EMAIL": (ticket.customer_email or "").strip()}
    order = ([prefer] if prefer in CHANNELS else []) + [c for c in CHANNELS if c != prefer]
    return [(channel, addresses[channel]) for channel in order if addresses[channel]]


def customer_notify(
    *,
    ticket: Ticket,
    kind: str,
    occasion: str,
    template: str,
    context: Mapping[str, Any],
    prefer_channel: str | None = None,
) -> dict[str, Any]:
    """Queue one message to the ticket's customer for this occasion, unless one was already queued.

    Returns what happened, for the caller's audit payload: {"notice_id", "outbox_id", "channel",
    "template", "already_sent", "refused"}. A missing or unusable address does not fail the
    business change: the notice is recorded without a message and the refusals are listed.
    """
    existing = CustomerNotice.objects.filter(kind=kind, occasion=occasion).first()
    if existing is not None:
        return {
            "notice_id": str(existing.id),
            "outbox_id": str(existing.message_id) if existing.message_id else None,
            "channel": existing.channel or None,
            "template": template,
            "already_sent": True,
            "refused": [],
        }
    refused: list[dict[str, str]] = []
    message = None
    for channel, recipient in _routes(ticket, prefer_channel):
        try:
            message = outbox_enqueue(
                channel=channel,
                recipient=recipient,
                template=template,
                ticket=ticket,
                context=dict(context),
                language=_language(ticket),
            )
        except DispatchError as exc:
            # Raised before anything is written (bad number, template edited to need a value we
            # do not have): the next channel is tried and the audit says why none worked.
            refused.append({"channel": channel, "code": exc.code})
            continue
        break
    if message is None:
        log.warning("No %s message for ticket %s: %s", kind, ticket.pk, refused or "no customer phone or email")
    notice = CustomerNotice.objects.create(
        ticket=ticket, kind=kind, occasion=occasion, message=message, channel=message.channel if message else ""
    )
    return {
        "notice_id": str(notice.id),
        "outbox_id": str(message.id) if message else None,
        "channel": message.channel if message else None,
        "template": template,
        "already_sent": False,
        "refused": refused,
    }


# A message that would speak of a window already begun is not sent: the customer would read of
# a visit that should have started, or choose a time that has gone. The caller's audit says why.
WINDOW_PASSED = "WINDOW_PASSED"


def _window_passed(
    *, ticket: Ticket, kind: str, template: str, starts: Iterable[datetime], any_ahead: bool = False
) -> dict[str, Any] | None:
    """What the caller records instead of a message when a window it would name has begun, else
    None. `any_ahead`: a list of windows to choose from is still worth sending while one of them
    is ahead (options_phrase leaves the begun ones out)."""
    now = timezone.now()
    starts = [start for start in starts if start is not None]
    begun = sorted(start for start in starts if start <= now)
    if not begun or (any_ahead and len(begun) < len(starts)):
        return None
    log.info("No %s message for ticket %s: the window it names began at %s.", kind, ticket.pk, begun[0].isoformat())
    return {
        "notice_id": None,
        "outbox_id": None,
        "channel": None,
        "template": template,
        "already_sent": False,
        "refused": [{"code": WINDOW_PASSED, "window_start": begun[0].isoformat()}],
    }


def _option_starts(proposal: ScheduleProposal) -> list[datetime]:
    return [parse_datetime(option["start"]) for option in proposal.options if option.get("start")]


def _proposal_windows(
    *, ticket: Ticket, proposal: ScheduleProposal, kind: str, template: str
) -> tuple[dict[str, Any] | None, str]:
    """(what to record instead of a message when every window has begun, else None; the windows
    still ahead as the customer answers them)."""
    passed = _window_passed(
        ticket=ticket, kind=kind, template=template, starts=_option_starts(proposal), any_ahead=True
    )
    if passed is not None:
        return passed, ""
    language = _language(ticket)
    visit = visit_phrase(ticket.incident_type, language=language)
    return None, options_phrase(proposal.options, site_zone(ticket.site), language=language, visit=visit)


# --- Occasions --------------------------------------------------------------------------------------


def reminder_occasion(appointment: Appointment) -> str:
    return f"{appointment.ticket_id}@{told_window(appointment)[0].isoformat()}"


def _booking_occasion(appointment: Appointment) -> str:
    # A moved appointment is a new occasion: the customer hears about the new time.
    return f"{appointment.id}@{appointment.start.isoformat()}"


def proposal_notify(*, ticket: Ticket, proposal: ScheduleProposal) -> dict[str, Any]:
    """Send the customer the proposed windows, numbered for a one-digit reply."""
    passed, windows = _proposal_windows(
        ticket=ticket, proposal=proposal, kind=Kind.PROPOSAL, template="proposal_windows"
    )
    if passed is not None:
        return passed
    return customer_notify(
        ticket=ticket,
        kind=Kind.PROPOSAL,
        occasion=str(proposal.id),
        template="proposal_windows",
        context={"windows": windows},
    )


def proposal_reminder_notify(*, ticket: Ticket, proposal: ScheduleProposal) -> dict[str, Any]:
    """Remind the customer, once, that the proposed windows are waiting for their answer."""
    passed, windows = _proposal_windows(
        ticket=ticket, proposal=proposal, kind=Kind.PROPOSAL_REMINDER, template="proposal_reminder"
    )
    if passed is not None:
        return passed
    return customer_notify(
        ticket=ticket,
        kind=Kind.PROPOSAL_REMINDER,
        occasion=str(proposal.id),
        template="proposal_reminder",
        context={"windows": windows},
    )


def booking_notify(*, ticket: Ticket, appointment: Appointment, prefer_channel: str | None = None) -> dict[str, Any]:
    """Confirm the booked arrival window to the customer (once per appointment and start time)."""
    passed = _window_passed(
        ticket=ticket, kind=Kind.BOOKING, template="schedule_confirmed", starts=told_window(appointment)[:1]
    )
    if passed is not None:
        return passed
    window = window_phrase(*told_window(appointment), site_zone(ticket.site), language=_language(ticket))
    return customer_notify(
        ticket=ticket,
        kind=Kind.BOOKING,
        occasion=_booking_occasion(appointment),
        template="schedule_confirmed",
        context={"window": window},
        prefer_channel=prefer_channel,
    )


def appointment_reminder_notify(*, ticket: Ticket, appointment: Appointment) -> dict[str, Any]:
    """Remind the customer of tomorrow's visit: the arrival window they were told, which a day plan
    never changes (once per ticket and window: a re-planned job is not reminded twice)."""
    passed = _window_passed(ticket=ticket, kind=Kind.REMINDER, template="reminder", starts=told_window(appointment)[:1])
    if passed is not None:
        return passed
    window = window_phrase(*told_window(appointment), site_zone(ticket.site), language=_language(ticket))
    return customer_notify(
        ticket=ticket,
        kind=Kind.REMINDER,
        occasion=reminder_occasion(appointment),
        template="reminder",
        context={"window": f"{_WORDS[_language(ticket)]['tomorrow']}, {window}"},
    )


def _eta_phrase(eta_at: datetime, zone: ZoneInfo, now: datetime, language: str) -> str:
    minutes = max(0, round((eta_at - now).total_seconds() / 60))
    return f"{moment_phrase(eta_at, zone, now=now, language=language)} ({_WORDS[language]['about']} {minutes} min)"


def departure_notify(*, ticket: Ticket, departure: Departure, tech_first_name: str, now: datetime) -> dict[str, Any]:
    """Tell the customer the technician is on the way and when they should arrive."""
    zone = site_zone(ticket.site)
    return customer_notify(
        ticket=ticket,
        kind=Kind.ON_MY_WAY,
        occasion=str(departure.id),
        template="on_my_way",
        context={
            "tech_first_name": tech_first_name or _WORDS[_language(ticket)]["technician"],
            "eta": _eta_phrase(departure.eta_at, zone, now, _language(ticket)),
        },
    )


def delay_notify(*, ticket: Ticket, departure: Departure, now: datetime) -> dict[str, Any]:
    """Tell the customer the arrival estimate slipped; one notice per slip (counted on the departure)."""
    zone = site_zone(ticket.site)
    return customer_notify(
        ticket=ticket,
        kind=Kind.DELAY,
        occasion=f"{departure.id}#{departure.delay_notices}",
        template="delay_notice",
        context={"eta": _eta_phrase(departure.eta_at, zone, now, _language(ticket))},
    )


def reply_help_notify(
    *, ticket: Ticket, proposal: ScheduleProposal, inbound_key: str, prefer_channel: str | None
) -> dict[str, Any]:
    """Answer a reply that names no proposed window with the numbered windows again."""
    passed, windows = _proposal_windows(
        ticket=ticket, proposal=proposal, kind=Kind.REPLY_HELP, template="proposal_reply_help"
    )
    if passed is not None:
        return passed
    return customer_notify(
        ticket=ticket,
        kind=Kind.REPLY_HELP,
        occasion=inbound_key,
        template="proposal_reply_help",
        context={"windows": windows},
        prefer_channel=prefer_channel,
    )


def reply_unavailable_notify(*, ticket: Ticket, inbound_key: str, prefer_channel: str | None) -> dict[str, Any]:
    """Answer a reply whose window has passed or was just taken: new times will follow."""
    return customer_notify(
        ticket=ticket,
        kind=Kind.REPLY_UNAVAILABLE,
        occasion=inbound_key,
        template="proposal_reply_unavailable",
        context={},
        prefer_channel=prefer_channel,
    )


def already_booked_notify(
    *, ticket: Ticket, appointment: Appointment, inbound_key: str, prefer_channel: str | None
) -> dict[str, Any]:
    """Answer a reply choosing another window after the visit was booked: it stays as booked."""
    window = window_phrase(*told_window(appointment), site_zone(ticket.site), language=_language(ticket))
    return customer_notify(
        ticket=ticket,
        kind=Kind.ALREADY_BOOKED,
        occasion=inbound_key,
        template="already_booked",
        context={"window": window},
        prefer_channel=prefer_channel,
    )


def emergency_dispatch_notify(*, ticket: Ticket, appointment: Appointment, technician, arrival: datetime) -> dict:
    """Tell the customer of an emergency who is coming and when, as the technician is sent."""
    zone = site_zone(ticket.site)
    language = _language(ticket)
    first_name = (technician.display_name or "").split(" ")[0] if technician else ""
    return customer_notify(
        ticket=ticket,
        kind=Kind.EMERGENCY_DISPATCH,
        occasion=str(appointment.id),
        template="emergency_dispatched",
        context={
            "tech_first_name": first_name or _WORDS[language]["technician"],
            "eta": _eta_phrase(arrival, zone, timezone.now(), language),
        },
    )


def question_reminder_notify(*, ticket: Ticket, asked_message_id: str, question: str) -> dict:
    """Ask the customer once more what intake asked and they have not answered."""
    return customer_notify(
        ticket=ticket,
        kind=Kind.QUESTION_REMINDER,
        occasion=asked_message_id,
        template="needs_info_reminder",
        context={"question": question},
    )
