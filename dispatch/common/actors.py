"""Who is acting: every service takes an explicit Actor, never a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .roles import Role


class ActorType:
    HUMAN = "HUMAN"
    AGENT = "AGENT"
    SERVICE = "SERVICE"
    SYSTEM = "SYSTEM"
    CHOICES = [(v, v.title()) for v in (HUMAN, AGENT, SERVICE, SYSTEM)]


@dataclass(frozen=True)
class Actor:
    """An authenticated caller with one role and, optionally, a narrowed scope."""

    actor_type: str
    actor_id: str
    role: Role
    user_id: int | None = None
    # Set when the actor is a technician: they act only on tickets assigned to them.
    technician_id: uuid.UUID | None = None
    # Empty means unscoped; otherwise the accounts/sites a scoped token may touch.
    account_ids: frozenset[str] = field(default_factory=frozenset)
    site_ids: frozenset[str] = field(default_factory=frozenset)
    request_id: str = ""
    correlation_id: str = ""
    trace_id: str = ""

    @property
    def is_scoped(self) -> bool:
        return bool(self.account_ids or self.site_ids)

    def in_scope(self, *, account_id, site_id) -> bool:
        """Whether a scoped actor may touch a record of this account/site."""
        if not self.is_scoped:
            return True
        if self.account_ids and str(account_id) in self.account_ids:
            return True
        return bool(self.site_ids and site_id is not None and str(site_id) in self.site_ids)


def system_actor(name: str = "scheduler") -> Actor:
    return Actor(actor_type=ActorType.SYSTEM, actor_id=f"system:{name}", role=Role.SYSTEM, request_id=str(uuid.uuid4()))


def service_actor(name: str) -> Actor:
    return Actor(
        actor_type=ActorType.SERVICE, actor_id=f"service:{name}", role=Role.SYSTEM, request_id=str(uuid.uuid4())
    )
