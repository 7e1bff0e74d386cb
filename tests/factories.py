"""Factories for the shared schema. Tickets made here go through the executor, like real ones."""

from __future__ import annotations

import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dispatch.common.actors import Actor, ActorType
from dispatch.common.roles import Role
from dispatch.technicians.models import Region, Technician, TechnicianSkill
from dispatch.tickets.models import Account, Asset, Contact, Site


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Harbor Properties {n}")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Building {n}")
    address_line1 = factory.Sequence(lambda n: f"{100 + n} Harbor Way")
    city = "Oakland"
    region = "CA"
    postal_code = "94607"
    lat = "37.804400"
    lng = "-122.271100"
    service_region = "EAST_BAY"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Pat Rivera {n}")
    phone = factory.Sequence(lambda n: f"+1510555{n:04d}")
    email = factory.Sequence(lambda n: f"pat{n}@example.com")


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    site = factory.SubFactory(SiteFactory)
    name = "Front entrance door"
    make = "Stanley"
    model = "Dura-Glide 2000"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if not create or not extracted:
            return
        role = Role(extracted)
        self.groups.add(Group.objects.get_or_create(name=role.value)[0])
        self.is_staff = role not in (Role.TECHNICIAN, Role.AGENT, Role.CUSTOMER, Role.SYSTEM)
        self.save()


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = "EAST_BAY"
    name = "East Bay"


class TechnicianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Technician
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, role="technician")
    display_name = factory.Sequence(lambda n: f"Dana Tech{n}")
    phone = factory.Sequence(lambda n: f"+1415555{n:04d}")
    home_lat = "37.804400"
    home_lng = "-122.271100"

    @factory.post_generation
    def skills(self, create, extracted, **kwargs):
        if not create:
            return
        for incident_type in extracted or ["DOOR_WONT_LATCH"]:
            TechnicianSkill.objects.create(technician=self, incident_type=incident_type, level=3)

    @factory.post_generation
    def region_codes(self, create, extracted, **kwargs):
        if not create:
            return
        for code in extracted or ["EAST_BAY"]:
            self.regions.add(RegionFactory(code=code, name=code.replace("_", " ").title()))


def actor_for(role: str | Role = Role.DISPATCHER, *, actor_id: str | None = None, technician=None, **kwargs) -> Actor:
    role = Role(role)
    return Actor(
        actor_type=kwargs.pop("actor_type", ActorType.AGENT if role == Role.AGENT else ActorType.HUMAN),
        actor_id=actor_id or (str(technician.user_id) if technician else f"{role.value}-{uuid.uuid4().hex[:6]}"),
        role=role,
        technician_id=technician.id if technician else None,
        request_id=str(uuid.uuid4()),
        **kwargs,
    )


def ticket_new(*, site=None, actor=None, summary="Front door won't latch", **fields):
    """A NEW ticket created through the executor (so it has its creation audit event)."""
    from dispatch.tickets.services import ticket_create

    site = site or SiteFactory()
    return ticket_create(
        actor=actor or actor_for(Role.DISPATCHER),
        account_id=site.account_id,
        site_id=site.id,
        summary=summary,
        **fields,
    ).ticket


# --- Scheduling and dispatch (helper E) ------------------------------------------------------
# Tickets further along the lifecycle, walked there through the real services.

from datetime import UTC, datetime, timedelta  # noqa: E402


def window_at(*, days: int = 1, hour: int = 9, hours: int = 2) -> tuple[datetime, datetime]:
    """A (start, end) window `days` from today at `hour`:00 UTC, `hours` long."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return start, start + timedelta(hours=hours)


def window_soon(*, hours: int = 2) -> dict:
    """A booking from the next full hour, as start= and end= keywords: a job the technician may
    check in on now (a check-in far ahead of the booked visit needs a reason)."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return {"start": start, "end": start + timedelta(hours=hours)}


class AppointmentFactory(factory.django.DjangoModelFactory):
    """A booking row set up directly (e.g. another job already occupying a technician)."""

    class Meta:
        model = "scheduling.Appointment"

    ticket = factory.LazyFunction(lambda: ticket_new())
    technician = factory.SubFactory(TechnicianFactory)
    start = factory.LazyFunction(lambda: window_at()[0])
    end = factory.LazyAttribute(lambda appointment: appointment.start + timedelta(hours=2))
    status = "CONFIRMED"
    created_by = "factory"


def ticket_ready_to_schedule(*, site=None, incident_type="DOOR_WONT_LATCH", priority="ROUTINE", actor=None, **fields):
    """A ticket triaged to READY_TO_SCHEDULE."""
    from dispatch.tickets.services import ticket_triage

    actor = actor or actor_for(Role.DISPATCHER)
    ticket = ticket_new(site=site, actor=actor, **fields)
    return ticket_triage(
        actor=actor, ticket_id=ticket.id, priority=priority, incident_type=incident_type, outcome="READY_TO_SCHEDULE"
    ).ticket


def ticket_triaged(*, site=None, incident_type="DOOR_WONT_LATCH", priority="EMERGENCY", actor=None, **fields):
    """A ticket triaged but not yet schedulable (the emergency-bypass starting point)."""
    from dispatch.tickets.services import ticket_triage

    actor = actor or actor_for(Role.DISPATCHER)
    ticket = ticket_new(site=site, actor=actor, **fields)
    return ticket_triage(actor=actor, ticket_id=ticket.id, priority=priority, incident_type=incident_type).ticket


def ticket_proposed(*, site=None, options=None, incident_type="DOOR_WONT_LATCH", actor=None, **fields):
    """A ticket in SCHEDULE_PROPOSED with `options` (default: one window tomorrow 09:00–11:00 UTC)."""
    from dispatch.scheduling.services import schedule_propose

    actor = actor or actor_for(Role.DISPATCHER)
    ticket = ticket_ready_to_schedule(site=site, incident_type=incident_type, actor=actor, **fields)
    if options is None:
        start, end = window_at()
        options = [{"start": start.isoformat(), "end": end.isoformat()}]
    return schedule_propose(actor=actor, ticket_id=ticket.id, options=options).ticket


def ticket_scheduled(
    *, site=None, technician=None, start=None, end=None, incident_type="DOOR_WONT_LATCH", actor=None, **fields
):
    """A ticket SCHEDULED on one confirmed window (booked to `technician` when given)."""
    from dispatch.scheduling.services import schedule_confirm

    actor = actor or actor_for(Role.DISPATCHER)
    if start is None:
        start, end = window_at()
    option = {"start": start.isoformat(), "end": end.isoformat()}
    if technician is not None:
        option["tech_id"] = str(technician.id)
    ticket = ticket_proposed(site=site, options=[option], incident_type=incident_type, actor=actor, **fields)
    return schedule_confirm(actor=actor, ticket_id=ticket.id, start=start, end=end).ticket


def ticket_dispatched(
    *, technician=None, site=None, start=None, end=None, incident_type="DOOR_WONT_LATCH", actor=None, **fields
):
    """A ticket DISPATCHED to `technician` (a new one with the incident type's skill by default)."""
    from dispatch.scheduling.services import assignment_dispatch

    actor = actor or actor_for(Role.DISPATCHER)
    technician = technician or TechnicianFactory(skills=[incident_type])
    ticket = ticket_scheduled(
        site=site, technician=technician, start=start, end=end, incident_type=incident_type, actor=actor, **fields
    )
    return assignment_dispatch(actor=actor, ticket_id=ticket.id, tech_id=technician.id).ticket


def ticket_in_progress(*, technician=None, site=None, incident_type="DOOR_WONT_LATCH", actor=None, **fields):
    """A ticket IN_PROGRESS: dispatched to `technician`, who has checked in."""
    from django.utils import timezone

    from dispatch.scheduling.services import booked_visit_start, early_check_in_warning, tech_check_in

    actor = actor or actor_for(Role.DISPATCHER)
    technician = technician or TechnicianFactory(skills=[incident_type])
    # Booked for the coming hour unless told otherwise, so that checking in now is on time.
    ticket = ticket_dispatched(
        technician=technician, site=site, incident_type=incident_type, actor=actor, **{**window_soon(), **fields}
    )
    now = timezone.now()
    # A visit booked for later (a test's own window) is checked in now with the reason that needs.
    early = early_check_in_warning(arrived_at=now, visit_start=booked_visit_start(ticket))
    return tech_check_in(
        actor=actor_for(Role.TECHNICIAN, technician=technician),
        ticket_id=ticket.id,
        timestamp=now,
        reason="Checked in ahead of the booked visit for the test." if early else None,
    ).ticket


# --- Closeout (helper F) --------------------------------------------------------------------------

from collections import deque  # noqa: E402

from dispatch.closeout.models import PriceBookItem  # noqa: E402
from dispatch.tickets.commands import command as _command  # noqa: E402

# Moves a ticket along the graph through the executor, to set a test up in a given state.
FACTORY_MOVE = _command("factory.move", ["dispatcher"])

DOOR_EVIDENCE_KEYS = [
    "photo_before_door_edge_and_strike",
    "photo_after_latched_alignment",
    "note_adjustments_and_test_cycles",
]
DOOR_CHECKLIST = {
    "work_performed": True,
    "parts_used_or_needed": True,
    "resolution_status": True,
    "onsite_photos_after": True,
    "billing_authorization": True,
}


def _route_to(state: str) -> list[str]:
    from dispatch.tickets.states import CREATION_STATES
    from dispatch.tickets.transitions import allowed_next_states

    queue = deque((start, [start]) for start in sorted(CREATION_STATES))
    seen = set(CREATION_STATES)
    while queue:
        current, states = queue.popleft()
        if current == state:
            return states
        for nxt in allowed_next_states(current):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, states + [nxt]))
    raise AssertionError(f"no route to {state}")


def ticket_move(*, actor, ticket_id, command, apply, expected_version=None, request=None):
    """Run `apply(change)` inside one executor change (tests that drive the executor directly)."""
    from dispatch.tickets.services import ticket_change

    with ticket_change(
        actor=actor, command=command, ticket_id=ticket_id, expected_version=expected_version, request=request
    ) as change:
        change.result = apply(change)
    return change.outcome


def ticket_start(*, actor, command, ticket, prepare=None, request=None):
    """Open `ticket` through the executor, running `prepare(change)` before its row is written."""
    from dispatch.tickets.services import ticket_opening

    with ticket_opening(actor=actor, command=command, ticket=ticket, request=request) as change:
        if prepare is not None:
            change.result = prepare(change)
    return change.outcome


def ticket_at(state: str, *, incident_type: str = "DOOR_WONT_LATCH", technician=None, nte_cents=None, site=None):
    """A ticket walked to `state` through the executor, with an incident type and (optionally)
    an assigned technician; the walk skips the business rules of the real services."""
    from dispatch.tickets.models import Ticket

    actor = actor_for(Role.DISPATCHER)
    route = _route_to(state)
    site = site or SiteFactory()

    def setup(change):
        change.ticket.incident_type = incident_type
        change.ticket.assigned_tech = technician
        if nte_cents is not None:
            change.ticket.nte_cents = nte_cents

    ticket = ticket_start(
        actor=actor,
        command=FACTORY_MOVE,
        ticket=Ticket(account=site.account, site=site, summary="Front door won't latch", state=route[0]),
    ).ticket
    ticket = ticket_move(actor=actor, ticket_id=ticket.id, command=FACTORY_MOVE, apply=setup).ticket
    for target in route[1:]:
        ticket = ticket_move(
            actor=actor, ticket_id=ticket.id, command=FACTORY_MOVE, apply=lambda ch, t=target: ch.transition(t)
        ).ticket
    return ticket


def door_evidence_add(ticket, *, actor=None, keys=None, signature=True):
    """The DOOR_WONT_LATCH evidence through closeout.add_evidence (plus a signature unless told not)."""
    from dispatch.closeout.services import evidence_add

    actor = actor or actor_for(Role.DISPATCHER)
    items = []
    for index, key in enumerate(DOOR_EVIDENCE_KEYS if keys is None else keys):
        kind = "NOTE" if key.startswith("note_") else "PHOTO"
        items.append(
            evidence_add(
                actor=actor,
                ticket_id=ticket.id,
                kind=kind,
                uri=f"s3://evidence/{ticket.id}/{index}.jpg",
                evidence_key=key,
            ).result
        )
    if signature:
        items.append(
            evidence_add(
                actor=actor,
                ticket_id=ticket.id,
                kind="SIGNATURE",
                uri=f"s3://evidence/{ticket.id}/signature.png",
                evidence_key="signature_or_no_signature_reason",
            ).result
        )
    return items


class PriceBookItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceBookItem
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"PART-{n:04d}")
    name = factory.Sequence(lambda n: f"Strike plate {n}")
    unit_cents = 2450
    taxable = True


# --- Agent API credentials (helper D1) ------------------------------------------------------------


def api_token_for(role: str, *, technician=None, user=None, account_ids=(), site_ids=(), name=None) -> str:
    """The plaintext of a new API token for `role` (a technician's token acts as that technician)."""
    from dispatch.api.services import api_token_create

    owner = technician.user if technician is not None else user
    _token, plaintext = api_token_create(
        name=name or f"{role}-{uuid.uuid4().hex[:8]}",
        role=role,
        account_ids=[str(i) for i in account_ids],
        site_ids=[str(i) for i in site_ids],
        user=owner,
    )
    return plaintext


def jwt_for(sub: str, role: str | None, *, expires_in: int = 300, secret: str | None = None, **claims) -> str:
    """An HS256 JWT as an identity provider would issue it (signed with the test settings' secret)."""
    import time

    import jwt
    from django.conf import settings

    body = {"sub": sub, "exp": int(time.time()) + expires_in, **claims}
    if role is not None:
        body["role"] = role
    return jwt.encode(body, secret or settings.DISPATCH_AUTH_JWT_SECRET, algorithm="HS256")


def payload_example(schema: dict) -> object:
    """A minimal value that satisfies a contract payload schema (required fields only; anyOf: first branch)."""
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        return payload_example(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: payload_example(properties[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [payload_example(schema["items"]) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind in ("number", "integer"):
        return max(schema.get("minimum", 1), 1) if schema.get("maximum", 100) >= 1 else schema["maximum"]
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return "2030-03-02T17:00:00Z"
    if fmt == "email":
        return "pat@example.com"
    return "x" * max(schema.get("minLength", 1), 1)


# --- Working time (helper S1) --------------------------------------------------------------------


class ShiftFactory(factory.django.DjangoModelFactory):
    """One weekly shift (Monday 07:00–16:00 Los Angeles unless told otherwise)."""

    class Meta:
        model = "scheduling.Shift"

    technician = factory.SubFactory(TechnicianFactory)
    weekday = 0
    start_time = "07:00"
    end_time = "16:00"
    timezone = "America/Los_Angeles"


def shifts_every_day(technician, *, start="07:00", end="16:00", timezone="America/Los_Angeles", weekdays=range(7)):
    """Give `technician` the same shift on each of `weekdays` (every day by default); returns them."""
    return [
        ShiftFactory(technician=technician, weekday=day, start_time=start, end_time=end, timezone=timezone)
        for day in weekdays
    ]


class TimeOffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scheduling.TimeOff"

    technician = factory.SubFactory(TechnicianFactory)
    start = factory.LazyFunction(lambda: window_at()[0])
    end = factory.LazyAttribute(lambda off: off.start + timedelta(hours=8))
    reason = "Vacation"
    created_by = "factory"
