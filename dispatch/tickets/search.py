"""Finding tickets from the back office's search box, quickly at any size.

A reference ("RD-1A2B3C4D", or any leading part of a ticket's id of at least 8 hex digits) is a
range of primary keys. Words are matched, each one, against the ticket's own text columns and
against the names and addresses of sites and customers — those first, in their own small tables,
so that the ticket table is searched by its indexes (on PostgreSQL, trigram indexes serve every
`icontains` here; migration 0013) rather than joined and scanned.
"""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from .models import Account, Site, Ticket

TICKET_TEXT_FIELDS = ("summary", "customer_name", "customer_phone", "customer_email")
SITE_TEXT_FIELDS = ("name", "address_line1", "city")
ACCOUNT_TEXT_FIELDS = ("name",)
HEX = frozenset("0123456789abcdef")
REFERENCE_MIN_DIGITS = 8
# Past this many matching sites or customers, the ticket filter takes them as a subquery.
ID_LIST_MAX = 1000
# Each word costs two small lookups: a pasted paragraph is searched by its first words only.
MAX_WORDS = 8


def reference_range(term: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The ids a reference or id prefix covers, or None when the term is not one."""
    digits = term.strip().lower().removeprefix("rd-").replace("-", "")
    if len(digits) < REFERENCE_MIN_DIGITS or len(digits) > 32 or not set(digits) <= HEX:
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def tickets_search(queryset: QuerySet[Ticket], search_term: str) -> QuerySet[Ticket]:
    """The tickets of `queryset` that the search box's term finds. "RD-…" is a reference only;
    bare digits may be a reference or a phone number ("5105550199" is both shapes), so they
    find either."""
    span = reference_range(search_term)
    if span is not None and search_term.strip().lower().startswith("rd-"):
        return queryset.filter(id__gte=span[0], id__lte=span[1])
    words = Q()
    for word in _words(search_term)[:MAX_WORDS]:
        words &= _word_matches(word)
    if span is not None:
        return queryset.filter(Q(id__gte=span[0], id__lte=span[1]) | words)
    return queryset.filter(words)


def _words(term: str) -> list[str]:
    # As Django's admin splits a search: quoted phrases stay together.
    words = []
    for bit in smart_split(term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if bit.strip():
            words.append(bit)
    return words


def _any_contains(fields: tuple[str, ...], word: str) -> Q:
    condition = Q()
    for name in fields:
        condition |= Q(**{f"{name}__icontains": word})
    return condition


def _ids(queryset: QuerySet):
    ids = list(queryset.values_list("id", flat=True)[: ID_LIST_MAX + 1])
    return ids if len(ids) <= ID_LIST_MAX else queryset.values("id")


def _word_matches(word: str) -> Q:
    sites = _ids(Site.objects.order_by().filter(_any_contains(SITE_TEXT_FIELDS, word)))
    accounts = _ids(Account.objects.order_by().filter(_any_contains(ACCOUNT_TEXT_FIELDS, word)))
    return _any_contains(TICKET_TEXT_FIELDS, word) | Q(site_id__in=sites) | Q(account_id__in=accounts)
