"""What the closeout pages of the back office share: the ticket as its page shows it to this user,
people's names for the actor ids in the records, and the ticket version a posted page showed."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import Http404

from dispatch.common.errors import DispatchError
from dispatch.tickets.models import Ticket


def visible_ticket(model_admin: admin.ModelAdmin, request, ticket_id) -> Ticket:
    """The ticket as the ticket admin would show it to this user, or 404 (the same rule as its page)."""
    ticket_admin = model_admin.admin_site.get_model_admin(Ticket)
    ticket = ticket_admin.get_object(request, str(ticket_id))
    if ticket is None or not ticket_admin.has_view_permission(request, ticket):
        raise Http404("No such ticket.")
    return ticket


def actor_names(actor_ids) -> dict[str, str]:
    """Back-office users' names for the actor ids they act under (their user id); others as given."""
    user_ids = {int(value) for value in actor_ids if value and value.isdigit()}
    names = {
        str(user.pk): user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=user_ids)
    }
    return {value: names.get(value, value) for value in actor_ids if value}


def page_version(request) -> int:
    """The ticket version the posted page showed; a form without one is refused (as the ticket
    page's buttons are), so a hand-made POST cannot skip the stale-page check."""
    version = _version(request.POST.get("expected_version"))
    if version is None:
        raise DispatchError(
            "INVALID_REQUEST",
            "This page did not say which version of the ticket it showed. Reload and try again.",
            status=400,
            details={"field": "expected_version"},
        )
    return version


def _version(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
