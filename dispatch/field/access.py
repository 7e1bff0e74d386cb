"""Who may use the technician pages, as whom, and which jobs they may open.

A technician signs in with their own user and sees only jobs assigned to them (or whose crew
they are booked on): any other
ticket answers 404, never 403, so a guessed id reveals nothing. Dispatchers and admins may
look over a technician's shoulder ("view as"), read-only. Everyone else is turned away.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q
from django.http import Http404

from dispatch.common.actors import Actor, ActorType
from dispatch.common.roles import Role, role_of_user
from dispatch.technicians.models import Technician
from dispatch.tickets import catalog
from dispatch.tickets.models import Ticket

# Roles that may look at a technician's pages without acting on them.
VIEW_AS_ROLES = frozenset({Role.DISPATCHER, Role.ADMIN})


@dataclass(frozen=True)
class Viewer:
    """The signed-in person on the technician pages and the technician whose jobs they see."""

    actor: Actor
    technician: Technician | None
    read_only: bool

    @property
    def technician_id(self):
        return self.technician.id if self.technician else None


class NotAllowed(Exception):
    """A signed-in user the technician pages are not for."""


def _own_technician(user) -> Technician | None:
    return Technician.objects.filter(user_id=user.pk, is_active=True).first()


def viewer_for(request, *, view_as: str | None = None) -> Viewer:
    """The Viewer for a signed-in request; NotAllowed for a user who is neither a technician nor
    a dispatcher. `view_as` (a technician id) is honoured for dispatchers only."""
    user = request.user
    role = role_of_user(user)
    technician = _own_technician(user)
    # Both the technician profile and the technician role: taking someone out of the group
    # closes these pages to them, as it closes the API.
    if technician is not None and role == Role.TECHNICIAN:
        actor = Actor(
            actor_type=ActorType.HUMAN,
            actor_id=str(user.pk),
            role=Role.TECHNICIAN,
            user_id=user.pk,
            technician_id=technician.id,
            request_id=str(uuid.uuid4()),
        )
        return Viewer(actor=actor, technician=technician, read_only=False)
    if role in VIEW_AS_ROLES:
        actor = Actor(
            actor_type=ActorType.HUMAN,
            actor_id=str(user.pk),
            role=Role.DISPATCHER,
            user_id=user.pk,
            request_id=str(uuid.uuid4()),
        )
        watched = None
        if view_as:
            try:
                watched = Technician.objects.filter(pk=uuid.UUID(str(view_as))).first()
            except ValueError:
                watched = None
        return Viewer(actor=actor, technician=watched, read_only=True)
    raise NotAllowed


def job_for(viewer: Viewer, ticket_id) -> Ticket:
    """The ticket if this viewer may open it, else 404: a technician's own job only; for a
    dispatcher viewing as a technician, any job (they see every job in the back office)."""
    try:
        key = uuid.UUID(str(ticket_id))
    except ValueError:
        raise Http404 from None
    tickets = Ticket.objects.select_related("site")
    if not viewer.read_only:
        # Their own job, or a crew job they are booked on: the toolset's policy (access_filter) to
        # the letter. A booked job not dispatched yet opens too; it offers no action until then.
        own = Q(assigned_tech_id=viewer.technician_id)
        tickets = tickets.filter(own | Q(pk__in=catalog.crew_ticket_ids(viewer.technician_id)))
    ticket = tickets.filter(pk=key).first()
    if ticket is None:
        raise Http404
    return ticket
