"""Reads about technicians: who they are, what they can do, how busy they are."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery

from dispatch.tickets.models import Ticket
from dispatch.tickets.states import TicketState

from .models import Region, Technician, TechnicianSkill

# A job still needs its technician in these states; after completion it is paperwork.
ACTIVE_JOB_STATES = frozenset(
    {
        TicketState.SCHEDULED,
        TicketState.PENDING_CUSTOMER_CONFIRMATION,
        TicketState.DISPATCHED,
        TicketState.ON_SITE,
        TicketState.IN_PROGRESS,
        TicketState.ON_HOLD,
        TicketState.APPROVAL_REQUIRED,
    }
)


def technician_key(value: Any) -> uuid.UUID | None:
    """`value` as a technician id, or None when it cannot be one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def technician_get(*, technician_id: Any) -> Technician | None:
    """The technician with this id (active or not), or None."""
    key = technician_key(technician_id)
    if key is None:
        return None
    return Technician.objects.select_related("user").filter(pk=key).first()


def technicians_active() -> QuerySet[Technician]:
    """Active technicians with their skills and regions loaded (three queries, whatever the count)."""
    return (
        Technician.objects.filter(is_active=True).prefetch_related("skills", "regions").order_by("display_name", "id")
    )


def technician_open_job_counts(*, technician_ids: Iterable[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    """How many jobs still need each technician (one grouped query); technicians with none are absent."""
    jobs = Ticket.objects.filter(assigned_tech__isnull=False, state__in=ACTIVE_JOB_STATES)
    if technician_ids is not None:
        jobs = jobs.filter(assigned_tech_id__in=list(technician_ids))
    rows = jobs.order_by().values("assigned_tech_id").annotate(jobs=Count("id"))
    return {row["assigned_tech_id"]: row["jobs"] for row in rows}


def technician_skill_level(technician: Technician, incident_types: Iterable[str]) -> tuple[str, int] | None:
    """The best (incident type, level) the technician has among `incident_types`, from prefetched skills."""
    wanted = {t for t in incident_types if t}
    best = None
    for skill in technician.skills.all():
        if skill.incident_type.upper() in wanted and (best is None or skill.level > best[1]):
            best = (skill.incident_type.upper(), skill.level)
    return best


def technician_region_codes(technician: Technician) -> set[str]:
    """The codes of the regions the technician covers, from prefetched regions."""
    return {region.code.upper() for region in technician.regions.all()}


def technician_fit_annotations(*, incident_type: str, region_code: str) -> dict:
    """Annotations of a Technician query: `skill_level` for `incident_type` (or None) and whether
    they cover `region_code`, read in the same query as the technician row."""
    levels = TechnicianSkill.objects.filter(technician=OuterRef("pk"), incident_type__iexact=incident_type)
    regions = Region.objects.filter(technicians=OuterRef("pk"), code__iexact=region_code)
    return {"skill_level": Subquery(levels.order_by("-level").values("level")[:1]), "covers": Exists(regions)}


def people_names(actor_ids: Iterable[Any]) -> dict[str, str]:
    """First names of the people behind these actor ids (a person's actor id is their user id):
    a technician's own first name, else the user's first name or username. Ids that name no
    person (services, agents) are left out."""
    ids = {str(actor_id) for actor_id in actor_ids if str(actor_id).isascii() and str(actor_id).isdigit()}
    if not ids:
        return {}
    names = {
        str(t.user_id): t.first_name for t in Technician.objects.filter(user_id__in=ids).only("user_id", "display_name")
    }
    rest = [int(i) for i in ids - set(names)]
    for user in get_user_model().objects.filter(pk__in=rest).only("pk", "first_name", "username"):
        names[str(user.pk)] = user.first_name or user.username
    return names
