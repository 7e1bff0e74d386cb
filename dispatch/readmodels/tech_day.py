"""A technician's day for their phone: the jobs assigned to them and, for one job, where the
trip stands (acknowledged, on the way, the approval waiting).

The job itself comes from `tech_job_packet`, the same read the toolset answers; this module
adds what a list of jobs and a phone's buttons need, in a fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from dispatch.closeout.gate import closeout_requirements_many
from dispatch.closeout.models import ChecklistResult, IncidentTemplate
from dispatch.scheduling.crews import CREW_STATUSES, crew_ticket_ids, visit_parts
from dispatch.scheduling.models import BOOKED_STATUSES, Appointment, Departure, DispatchAcknowledgement
from dispatch.scheduling.selectors import dispatch_transition_current
from dispatch.tickets.models import Approval, StateTransition, Ticket
from dispatch.tickets.states import TicketState

# Jobs on the technician's hands whatever their date: they are out there now.
UNDERWAY_STATES = (
    TicketState.DISPATCHED,
    TicketState.ON_SITE,
    TicketState.IN_PROGRESS,
    TicketState.ON_HOLD,
    TicketState.APPROVAL_REQUIRED,
)
# Booked and assigned (a confirmed window names its technician), not yet sent: listed as
# "booked for you, not dispatched yet"; the job opens, with no action until it is dispatched.
BOOKED_STATES = (TicketState.SCHEDULED, TicketState.PENDING_CUSTOMER_CONFIRMATION)
UPCOMING_STATES = (*UNDERWAY_STATES, *BOOKED_STATES)
FINISHED_STATES = (
    TicketState.COMPLETED_PENDING_VERIFICATION,
    TicketState.VERIFIED,
    TicketState.INVOICED,
    TicketState.CLOSED,
)
PRIORITY_RANK = {"EMERGENCY": 0, "URGENT": 1, "ROUTINE": 2}
DAYS_AHEAD = 7
FINISHED_DAYS_BACK = 30


def key_label(key: str) -> str:
    """'photo_before' -> 'Photo before': evidence and checklist keys as a person reads them."""
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


@dataclass(frozen=True)
class JobCard:
    ticket_id: str
    reference: str
    state: str
    state_label: str
    priority: str
    incident: str
    customer_first_name: str
    address: str
    start: datetime | None
    end: datetime | None
    zone: str  # the site's time zone, in which the window is shown
    day: str  # the appointment's date in the site's zone, e.g. "Today", "Tue 8 Dec"
    missing_evidence_keys: tuple[str, ...]
    missing_checklist_keys: tuple[str, ...]
    underway: bool
    # Whether the card links to the job: the technician's own job or a crew job they are on.
    openable: bool
    # Booked but not dispatched yet: it opens, with nothing to do until it is dispatched.
    booked: bool = False
    # A crew or multi-day job: "Crew of 2 with Ana Ruiz · Day 1 of 3".
    visit_label: str = ""


def _first_name(name: str) -> str:
    return (name or "").strip().split(" ")[0]


def _day_label(moment: datetime | None, zone: str, today) -> str:
    if moment is None:
        return "Unscheduled"
    local = moment.astimezone(ZoneInfo(zone)).date()
    if local == today:
        return "Today"
    if local == today + timedelta(days=1):
        return "Tomorrow"
    return local.strftime("%a %-d %b")


def _cards(tickets: list[Ticket], now: datetime, technician_id) -> list[JobCard]:
    ids = [ticket.id for ticket in tickets]
    # Crew and multi-day jobs this technician is booked on: theirs to open as the lead's are,
    # labelled with the crew and the day of the run they are on next.
    own_parts = list(
        Appointment.objects.filter(
            ticket_id__in=ids, technician_id=technician_id, visit__isnull=False, status__in=CREW_STATUSES
        ).order_by("start", "id")
    )
    where = visit_parts(own_parts)
    visit_labels: dict = {}
    for part in own_parts:
        if part.ticket_id not in visit_labels or part.end > now >= visit_labels[part.ticket_id][1]:
            visit_labels[part.ticket_id] = (where[part.id].label if part.id in where else "", part.end)
    submissions: dict = {}
    for result in ChecklistResult.objects.filter(ticket_id__in=ids).order_by("ticket_id", "-created_at", "-id"):
        submissions.setdefault(result.ticket_id, (result.checklist_status, result.no_signature_reason))
    gates = closeout_requirements_many(tickets, submissions)
    names = dict(
        IncidentTemplate.objects.filter(incident_type__in={t.incident_type for t in tickets}).values_list(
            "incident_type", "name"
        )
    )
    cards = []
    for ticket in tickets:
        gate = gates[ticket.id]
        zone = ticket.site.timezone
        today = now.astimezone(ZoneInfo(zone)).date()
        open_work = ticket.state not in FINISHED_STATES
        cards.append(
            JobCard(
                ticket_id=str(ticket.id),
                reference=ticket.short_ref,
                state=ticket.state,
                state_label=TicketState(ticket.state).label,
                priority=ticket.priority,
                incident=names.get(ticket.incident_type) or key_label((ticket.incident_type or "Job").lower()),
                customer_first_name=_first_name(ticket.customer_name),
                address=", ".join(part for part in (ticket.site.address_line1, ticket.site.city) if part),
                start=ticket.scheduled_start,
                end=ticket.scheduled_end,
                zone=zone,
                day=_day_label(ticket.scheduled_start, zone, today),
                missing_evidence_keys=tuple(gate.missing_evidence_keys) if open_work else (),
                missing_checklist_keys=tuple(gate.missing_checklist_keys) if open_work else (),
                underway=ticket.state in UNDERWAY_STATES,
                openable=ticket.assigned_tech_id == technician_id or ticket.id in visit_labels,
                booked=ticket.state in BOOKED_STATES,
                visit_label=visit_labels.get(ticket.id, ("", None))[0],
            )
        )
    return cards


def technician_upcoming_jobs(*, technician_id, now: datetime | None = None) -> list[JobCard]:
    """Today's and the next seven days' jobs assigned or booked to the technician, plus every job
    underway whatever its date; by day, emergencies first within a day, then by appointment time."""
    now = now or timezone.now()
    horizon = now + timedelta(days=DAYS_AHEAD + 1)
    since = now - timedelta(days=1)  # today's early jobs, in any zone
    booked = Appointment.objects.filter(
        technician_id=technician_id, status__in=BOOKED_STATUSES, start__gte=since, start__lt=horizon
    ).values("ticket_id")
    tickets = list(
        Ticket.objects.filter(Q(assigned_tech_id=technician_id) | Q(id__in=booked), state__in=UPCOMING_STATES)
        .filter(
            Q(state__in=UNDERWAY_STATES)
            | Q(scheduled_start__gte=since, scheduled_start__lt=horizon)
            | Q(scheduled_start__isnull=True)
        )
        .select_related("site")
    )
    tickets.sort(
        key=lambda t: (
            t.scheduled_start is None,
            t.scheduled_start.astimezone(ZoneInfo(t.site.timezone)).date() if t.scheduled_start else None,
            PRIORITY_RANK.get(t.priority, 9),
            t.scheduled_start or now,
        )
    )
    return _cards(tickets, now, technician_id)


def technician_finished_jobs(*, technician_id, now: datetime | None = None) -> list[JobCard]:
    """Jobs the technician finished in the last thirty days, newest first."""
    now = now or timezone.now()
    finished_ids = StateTransition.objects.filter(
        to_state=TicketState.COMPLETED_PENDING_VERIFICATION, created_at__gte=now - timedelta(days=FINISHED_DAYS_BACK)
    ).values("ticket_id")
    tickets = list(
        Ticket.objects.filter(
            Q(assigned_tech_id=technician_id) | Q(id__in=crew_ticket_ids(technician_id)),
            state__in=FINISHED_STATES,
            id__in=finished_ids,
        )
        .select_related("site")
        .order_by("-scheduled_start")[:100]
    )
    return _cards(tickets, now, technician_id)


@dataclass(frozen=True)
class TripFacts:
    """Where the current dispatch stands, for the buttons a technician sees."""

    acknowledged_at: datetime | None
    departed_at: datetime | None
    eta_at: datetime | None
    pending_approval: Approval | None
    last_approval: Approval | None


def job_trip(ticket: Ticket) -> TripFacts:
    transition = dispatch_transition_current(ticket.id)
    acknowledged = departed = None
    if transition is not None:
        acknowledged = DispatchAcknowledgement.objects.filter(dispatch_transition=transition).first()
        departed = Departure.objects.filter(dispatch_transition=transition).first()
    approvals = list(Approval.objects.filter(ticket_id=ticket.id).order_by("-created_at")[:1])
    last = approvals[0] if approvals else None
    return TripFacts(
        acknowledged_at=acknowledged.acknowledged_at if acknowledged else None,
        departed_at=departed.departed_at if departed else None,
        eta_at=departed.eta_at if departed else None,
        pending_approval=last if last is not None and last.status == Approval.Status.PENDING else None,
        last_approval=last,
    )
