"""Filling `{placeholders}` in message templates, safely.

Templates are edited in the admin, so they are not trusted code: a placeholder may name a
value and nothing else. `{ticket.site.account}` or `{0[key]}` would let an editor reach into
objects the sender never meant to expose, so only plain names are accepted.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from dispatch.common.errors import DispatchError


class _PlainNames(string.Formatter):
    def get_field(self, field_name: str, args, kwargs):
        if not field_name.isidentifier():
            raise DispatchError(
                "TEMPLATE_INVALID",
                f"Placeholder {{{field_name}}} is not a plain name; use letters, digits and underscores only.",
                status=400,
                dimension="request",
                details={"placeholder": field_name},
            )
        if field_name not in kwargs:
            raise DispatchError(
                "TEMPLATE_CONTEXT_MISSING",
                f"The message needs a value for {{{field_name}}}.",
                status=400,
                dimension="request",
                details={"missing_keys": [field_name]},
            )
        return kwargs[field_name], field_name

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        # !r and !a would show an object's repr to a customer; every value is shown as text.
        return value

    def format_field(self, value: Any, format_spec: str) -> str:
        # Values arrive as text: a format spec like {when:%H:%M} would otherwise call into
        # arbitrary __format__ implementations of whatever the caller put in the context.
        return format(str(value), format_spec)


_formatter = _PlainNames()


def placeholders_of(text: str) -> list[str]:
    """The placeholder names a template text uses, in order, without repeats."""
    names: list[str] = []
    try:
        parsed = list(_formatter.parse(text))
    except ValueError as exc:
        raise DispatchError("TEMPLATE_INVALID", f"The template text is malformed: {exc}.", status=400) from None
    for _literal, field_name, _spec, _conversion in parsed:
        if field_name is not None and field_name not in names:
            names.append(field_name)
    return names


def template_render(text: str, context: Mapping[str, Any]) -> str:
    """Fill a template text from `context`; a missing or non-plain placeholder is refused."""
    missing = [name for name in placeholders_of(text) if name.isidentifier() and name not in context]
    if missing:
        raise DispatchError(
            "TEMPLATE_CONTEXT_MISSING",
            "The message needs values for: " + ", ".join(missing) + ".",
            status=400,
            dimension="request",
            details={"missing_keys": missing},
        )
    try:
        return _formatter.vformat(text, (), dict(context))
    except (ValueError, IndexError) as exc:
        raise DispatchError("TEMPLATE_INVALID", f"The template text is malformed: {exc}.", status=400) from None
