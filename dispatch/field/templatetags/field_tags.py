"""Small helpers for the technician pages' templates."""

import uuid

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def post_fields(context):
    """The hidden fields every button's form carries: the CSRF token, a fresh idempotency key
    (a form sent twice with scripts off still has one effect; the page script replaces it with
    one per press) and, for a dispatcher viewing as a technician, whose pages these are."""
    viewer = context.get("viewer")
    as_field = (
        format_html('<input type="hidden" name="as" value="{}">', viewer.technician_id)
        if viewer is not None and viewer.read_only and viewer.technician_id
        else ""
    )
    return format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<input type="hidden" name="idempotency_key" value="{}">{}',
        context.get("csrf_token"),
        uuid.uuid4(),
        as_field,
    )


@register.filter
def money(cents):
    """Whole cents as dollars: 12550 -> $125.50."""
    if cents is None:
        return "—"
    return f"${int(cents) / 100:,.2f}"
