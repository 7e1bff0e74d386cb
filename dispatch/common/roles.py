"""The ten roles of Real Dispatch and the aliases agents send for them."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    DISPATCHER = "dispatcher", "Dispatcher"
    TECHNICIAN = "technician", "Technician"
    AGENT = "agent", "Agent"
    CUSTOMER = "customer", "Customer"
    APPROVER = "approver", "Approver"
    QA = "qa", "QA"
    FINANCE = "finance", "Finance"
    ADMIN = "admin", "Admin"
    AUDIT = "audit", "Audit"
    SYSTEM = "system", "System"


ROLE_ALIASES = {
    "tech": Role.TECHNICIAN,
    "assistant": Role.DISPATCHER,
    "bot": Role.DISPATCHER,
    "dispatcher_admin": Role.DISPATCHER,
}

# Roles that use the admin back office (the Django group of the same name grants the rights).
BACK_OFFICE_ROLES = frozenset({Role.DISPATCHER, Role.APPROVER, Role.QA, Role.FINANCE, Role.ADMIN, Role.AUDIT})


def role_normalize(value: str | None) -> Role | None:
    """The canonical role for a name or alias, or None when it names no role."""
    if not value:
        return None
    key = value.strip().lower()
    if key in ROLE_ALIASES:
        return ROLE_ALIASES[key]
    try:
        return Role(key)
    except ValueError:
        return None


def role_of_user(user) -> Role | None:
    """A user's role is the one role group they belong to; superusers act as admin."""
    if user is None or not user.is_authenticated:
        return None
    # Cached on the user object for the request: the ticket page asks once per button.
    cached = getattr(user, "dispatch_role", None)
    if cached is not None:
        return cached
    names = {group.name for group in user.groups.all()}
    role = next((r for r in Role if r.value in names), None)
    if role is None and user.is_superuser:
        role = Role.ADMIN
    user.dispatch_role = role
    return role


# Django permissions each role's group carries, as "app_label.codename" patterns ("*" matches
# any model). Technicians, agents, customers and the system use no back office at all.
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.DISPATCHER: (
        "tickets.view_*",
        "tickets.add_account",
        "tickets.change_account",
        "tickets.add_site",
        "tickets.change_site",
        "tickets.add_contact",
        "tickets.change_contact",
        "tickets.add_asset",
        "tickets.change_asset",
        "tickets.add_ticket",
        "tickets.change_ticket",
        "technicians.view_*",
        "technicians.change_technician",
        "closeout.view_*",
        "closeout.change_incidenttemplate",
        "scheduling.*",
        "intake.*",
        "messaging.view_*",
        "api.view_*",
        # The autopilot's ladder and suggestions (an admin sets the ladder; suggestions are
        # answered through the services, not by editing rows).
        "autopilot.view_*",
        # Lifting a sign-in lockout for a colleague who mistyped their password.
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ),
    Role.APPROVER: (
        "tickets.view_*",
        "tickets.change_approval",
        "technicians.view_*",
        "closeout.view_*",
        "scheduling.view_*",
    ),
    Role.QA: ("tickets.view_*", "technicians.view_*", "closeout.view_*", "scheduling.view_*"),
    Role.FINANCE: ("tickets.view_*", "closeout.*", "messaging.view_*", "messaging.change_*"),
    Role.ADMIN: ("*.*",),
    Role.AUDIT: ("*.view_*",),
    Role.TECHNICIAN: (),
    Role.AGENT: (),
    Role.CUSTOMER: (),
    Role.SYSTEM: (),
}


def role_groups_sync(**_kwargs) -> None:
    """Create one group per role with exactly the permissions above (runs after every migrate)."""
    from fnmatch import fnmatchcase

    from django.contrib.auth.models import Group, Permission

    permissions = list(Permission.objects.select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = [
            p
            for p in permissions
            if any(fnmatchcase(f"{p.content_type.app_label}.{p.codename}", pattern) for pattern in patterns)
        ]
        group.permissions.set(wanted)
