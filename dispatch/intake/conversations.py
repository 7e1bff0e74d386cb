"""Threading: which ticket a message belongs to, and who and where the sender is.

A phone number or an email address is not a person: a household, an office line or a mistyped
number is shared. So a message from a sender with an open ticket joins that ticket (the newest
one the message may be about) only when nothing it says contradicts it: no other street than the
ticket's site, no other name than the ticket's customer, and, for a web form (always a request of
its own), the ticket's site. Otherwise intake opens a ticket: for the account of the matching
Contact, at the contact's site, the account's only site, or the site whose street the message
names; for an unknown sender, on a provisional account and site that a dispatcher confirms or
merges later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Upper
from django.utils import timezone

from dispatch.common import geocode
from dispatch.tickets.models import Account, Contact, Site, Ticket
from dispatch.tickets.states import OPEN_STATES

from .addresses import fold
from .extract import names_agree, place_key, street_key, street_parts
from .models import Conversation, InboundChannel, InboundMessage

OPEN = [s.value for s in OPEN_STATES]
PROVISIONAL_SITE_NAME = "Address to be confirmed"
# More sites than this on one account and intake matches by address only (never lists them all).
SITE_SCAN_LIMIT = 500
# A sender's open conversations read at once to find their ticket (more only when many are stale).
CONVERSATION_SCAN_LIMIT = 20
# A sender's other open tickets read when the message is not about their newest one.
SENDER_TICKET_SCAN_LIMIT = 10

# Identity confidence: how sure intake is of who the customer is and where the job is.
IDENTITY_CONTACT_ADDRESS_MATCH = 95
IDENTITY_CONTACT_SITE = 92
IDENTITY_CONTACT_ONLY_SITE = 90
IDENTITY_NEW_CUSTOMER_WITH_ADDRESS = 85
IDENTITY_UNCONFIRMED = 70
IDENTITY_UNKNOWN = 40


def sender_lock(*, phone: str, email: str) -> None:
    """Serialise intake per sender until the transaction ends, so two messages from one new
    customer arriving together open one ticket, not two. (SQLite serialises all writers.)"""
    if connection.vendor != "postgresql":
        return
    keys = sorted(k for k in (f"phone:{phone}" if phone else "", f"email:{email}" if email else "") if k)
    with connection.cursor() as cursor:
        for key in keys:
            number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


@dataclass
class SenderThread:
    """What intake knows about a sender before it reads their message."""

    # The sender's newest open ticket (site and account loaded), or None.
    ticket: Ticket | None = None
    # The sender's open conversations on that ticket (the one on the message's channel is reused).
    conversations: list[Conversation] = dataclasses.field(default_factory=list)
    # The sender may have open conversations of closed tickets (see finished_conversations_close).
    finished: bool = False

    def conversation_on(self, channel: str) -> Conversation | None:
        return next((c for c in self.conversations if c.channel == channel), None)


# --- Finding a sender's ticket -------------------------------------------------------------
# A sender is known by phone, by email, or by both; each lookup matches either.


def _sender(phone: str, email: str) -> dict[str, str]:
    """What is known of the sender."""
    return {name: value for name, value in (("phone", phone), ("email", email)) if value}


def _sender_match(sender: dict[str, str], *, phone_field: str, email_field: str, email_any_case: bool) -> Q:
    """Rows with the sender's phone, or their email (in any case through the UPPER() index)."""
    match = Q()
    if "phone" in sender:
        match |= Q(**{phone_field: sender["phone"]})
    if "email" in sender:
        # UPPER() on both sides, which PostgreSQL serves from the UPPER(email) index.
        match |= Q(email_upper=Upper(Value(sender["email"]))) if email_any_case else Q(**{email_field: sender["email"]})
    return match


def _open_conversations(sender: dict[str, str]) -> QuerySet:
    return (
        Conversation.objects.filter(
            _sender_match(sender, phone_field="customer_phone", email_field="customer_email", email_any_case=False),
            status=Conversation.Status.OPEN,
        )
        .annotate(ticket_state=F("ticket__state"), ticket_created_at=F("ticket__created_at"))
        .order_by("-ticket_created_at")[:CONVERSATION_SCAN_LIMIT]
    )


def _newest_open_ticket(sender: dict[str, str]) -> Ticket | None:
    return (
        Ticket.objects.alias(email_upper=Upper("customer_email"))
        .filter(
            _sender_match(sender, phone_field="customer_phone", email_field="customer_email", email_any_case=True),
            state__in=OPEN,
        )
        .select_related("site", "account")
        .order_by("-created_at")
        .first()
    )


def _contacts(sender: dict[str, str]) -> QuerySet:
    return (
        Contact.objects.alias(email_upper=Upper("email"))
        .filter(_sender_match(sender, phone_field="phone", email_field="email", email_any_case=True))
        .select_related("account", "site")
        .order_by("-is_authorized_requester", "created_at")[:10]
    )


def sender_thread(*, phone: str, email: str) -> SenderThread:
    """The sender's newest open ticket, through a conversation or a ticket with their phone/email,
    with its site, account and the sender's conversations on it. Two queries; a third only when
    that ticket is reached through a conversation alone (it carries another phone or email)."""
    sender = _sender(phone, email)
    if not sender:
        return SenderThread()
    rows = list(_open_conversations(sender))
    if len(rows) == CONVERSATION_SCAN_LIMIT:
        by_conversation = _sender_match(
            sender, phone_field="customer_phone", email_field="customer_email", email_any_case=False
        )
        # Many open conversations, most of them finished: the open one may be further down.
        rows = (
            list(
                Conversation.objects.filter(by_conversation, status=Conversation.Status.OPEN, ticket__state__in=OPEN)
                .annotate(ticket_state=F("ticket__state"), ticket_created_at=F("ticket__created_at"))
                .order_by("-ticket_created_at")[:CONVERSATION_SCAN_LIMIT]
            )
            + rows
        )
    thread = SenderThread(
        finished=len(rows) >= CONVERSATION_SCAN_LIMIT or any(row.ticket_state not in OPEN_STATES for row in rows)
    )
    through_conversation = next((row for row in rows if row.ticket_state in OPEN_STATES), None)
    ticket = _newest_open_ticket(sender)
    # The conversation's ticket wins when it is the newer one (it may carry another phone or email).
    newer = through_conversation is not None and (
        ticket is None or through_conversation.ticket_created_at >= ticket.created_at
    )
    if newer and (ticket is None or ticket.pk != through_conversation.ticket_id):
        ticket = Ticket.objects.select_related("site", "account").get(pk=through_conversation.ticket_id)
    thread.ticket = ticket
    if ticket is not None:
        thread.conversations = [row for row in rows if row.ticket_id == ticket.pk]
    return thread


def sender_open_tickets(*, phone: str, email: str, exclude) -> list[Ticket]:
    """The sender's other open tickets, newest first (site and account loaded; at most
    SENDER_TICKET_SCAN_LIMIT): those with their phone/email and those they wrote about before.
    Read only when a message is not about the sender's newest open ticket. Two queries."""
    sender = _sender(phone, email)
    if not sender:
        return []
    through_conversations = list(
        Conversation.objects.filter(
            _sender_match(sender, phone_field="customer_phone", email_field="customer_email", email_any_case=False),
            status=Conversation.Status.OPEN,
            ticket__state__in=OPEN,
        )
        .exclude(ticket_id=exclude)
        .order_by("-ticket__created_at")
        .values_list("ticket_id", flat=True)[:SENDER_TICKET_SCAN_LIMIT]
    )
    return list(
        Ticket.objects.alias(email_upper=Upper("customer_email"))
        .filter(
            _sender_match(sender, phone_field="customer_phone", email_field="customer_email", email_any_case=True)
            | Q(pk__in=through_conversations),
            state__in=OPEN,
        )
        .exclude(pk=exclude)
        .select_related("site", "account")
        .order_by("-created_at")[:SENDER_TICKET_SCAN_LIMIT]
    )


# --- Whether a message is about the ticket found -----------------------------------------------
# Answering a message on the wrong ticket tells its sender that ticket's state, reference and
# status link: someone else's. A doubt therefore opens a ticket (a duplicate a dispatcher merges
# is cheap); only what the message states counts against, never what it leaves out.

# Why a message is not about a ticket (recorded on the message for the dispatcher).
OTHER_ADDRESS = "address"
OTHER_NAME = "name"
OTHER_REQUEST = "web_request_elsewhere"


def site_agrees(site: Site | None, address: dict | None) -> bool:
    """Whether an address a message states may be the site's: the same house number and street
    (spelling, direction, suffix and unit aside), and the same city and ZIP code where both
    have them. A site without a street, or a message without an address, says nothing against."""
    if not address or not (address.get("line1") or "").strip() or site is None or not site.address_line1.strip():
        return True
    if street_parts(site.address_line1) != street_parts(address["line1"]):
        return False
    city, stated_city = place_key(site.city), place_key(address.get("city") or "")
    if city and stated_city and city != stated_city:
        return False
    postal, stated_postal = site.postal_code.strip()[:5], (address.get("postal_code") or "").strip()[:5]
    return not (postal and stated_postal and postal != stated_postal)


def thread_conflicts(ticket: Ticket, *, channel: str, address: dict | None, name: str) -> list[str]:
    """Why a message from one of the ticket's senders is not about it (empty: it is, and joins):
    it names another street (OTHER_ADDRESS) or another person (OTHER_NAME) than the ticket's, or
    it is a web form (a request of its own) not shown to be about the ticket's site (OTHER_REQUEST).
    `ticket.site` must be loaded (sender_thread and sender_open_tickets do); no query."""
    conflicts = []
    if not site_agrees(ticket.site, address):
        conflicts.append(OTHER_ADDRESS)
    if name and not names_agree(ticket.customer_name, name):
        conflicts.append(OTHER_NAME)
    # A form always gives an address; joining needs it to be the ticket's site, unless the ticket
    # is still waiting for its street (then the form answers the question).
    street_known = bool(ticket.site.address_line1.strip())
    if channel == InboundChannel.WEB and not conflicts and street_known and not (address and address.get("line1")):
        conflicts.append(OTHER_REQUEST)
    return conflicts


def ticket_review_waiting(ticket: Ticket) -> bool:
    """Whether some message of the ticket waits for a dispatcher's review."""
    return InboundMessage.objects.filter(ticket=ticket, needs_review=True).exists()


def finished_conversations_close(*, phone: str, email: str) -> int:
    """Close the sender's conversations whose tickets were closed or cancelled (they no longer thread)."""
    query = Q()
    if phone:
        query |= Q(customer_phone=phone)
    if email:
        query |= Q(customer_email=email)
    if not query:
        return 0
    return (
        Conversation.objects.filter(query, status=Conversation.Status.OPEN)
        .exclude(ticket__state__in=OPEN)
        .update(status=Conversation.Status.CLOSED)
    )


def conversation_start(*, ticket: Ticket, channel: str, phone: str, email: str, asked: dict) -> Conversation:
    """The first conversation of a ticket intake has just opened (so there is none to look up)."""
    conversation = Conversation(
        ticket=ticket,
        channel=channel,
        customer_phone=phone,
        customer_email=email,
        asked=asked,
        last_message_at=timezone.now(),
    )
    conversation.save(force_insert=True)
    return conversation


def conversation_attach(
    *, ticket: Ticket, channel: str, phone: str, email: str, known: Conversation | None = None
) -> Conversation:
    """The ticket's conversation on this channel (created on first use), touched now. `known` is
    that conversation when the caller has already read it (sender_thread): no second lookup."""
    now = timezone.now()
    if known is not None:
        conversation, created = known, False
    else:
        conversation, created = Conversation.objects.get_or_create(
            ticket=ticket,
            channel=channel,
            defaults={"customer_phone": phone, "customer_email": email, "last_message_at": now},
        )
    if not created:
        updates = {"last_message_at": now}
        # A customer who first wrote without one of them may add it later.
        if phone and not conversation.customer_phone:
            updates["customer_phone"] = phone
        if email and not conversation.customer_email:
            updates["customer_email"] = email
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
        for name, value in updates.items():
            setattr(conversation, name, value)
    return conversation


def contact_match(*, phone: str, email: str) -> tuple[Contact | None, bool]:
    """The Contact with this phone (preferred) or email, and whether the match is ambiguous
    (the same phone or email on contacts of different accounts)."""
    sender = _sender(phone, email)
    if not sender:
        return None, False
    contacts = list(_contacts(sender))
    if not contacts:
        return None, False
    by_phone = [c for c in contacts if phone and c.phone == phone]
    chosen = (by_phone or contacts)[0]
    ambiguous = len({c.account_id for c in contacts}) > 1
    return chosen, ambiguous


def site_has_address(site: Site | None) -> bool:
    """Whether a technician could find the site: a street line and a city or ZIP code."""
    return bool(site and site.address_line1.strip() and (site.city.strip() or site.postal_code.strip()))


def site_is_placeholder(site: Site) -> bool:
    """A provisional site intake opened before the customer told us where they are."""
    return site.account.is_provisional and not site_has_address(site)


def site_matching(sites, address: dict | None) -> Site | None:
    """The site among `sites` on the street the message names (same number and street)."""
    if not address or not address.get("line1"):
        return None
    wanted = street_key(address["line1"])
    for site in sites:
        if site.address_line1 and street_key(site.address_line1) == wanted:
            return site
    return None


# A known customer with this many sites or fewer is asked which one; more are asked the address.
SITE_CHOICE_MAX = 4


def sites_to_choose(ticket: Ticket) -> list[Site]:
    """The known customer's sites the ticket may be about, when a short list can be offered ("88 NE
    Alberta St or 1200 SW Main St?"); [] for a new customer or one with too many sites to list."""
    account = ticket.account
    if account.is_provisional:
        return []
    sites = [s for s in account.sites.exclude(pk=ticket.site_id)[: SITE_CHOICE_MAX + 1] if site_has_address(s)]
    return sites if 2 <= len(sites) <= SITE_CHOICE_MAX else []


def site_named(sites, text: str) -> Site | None:
    """The one site among `sites` a customer's free-text answer points at: by its street's name
    ("it's the one on Alberta"), its ZIP code ("97211") or both; None when none or several fit."""
    words = set(re.findall(r"[a-z0-9]+", fold(text)))
    fits = []
    for site in sites:
        _number, name = street_parts(site.address_line1) if site.address_line1 else ("", ())
        by_name = bool(name) and set(name) <= words
        by_zip = bool(site.postal_code) and site.postal_code[:5] in words
        if by_name or by_zip:
            fits.append((by_name and by_zip, by_name, site))
    if not fits:
        return None
    fits.sort(key=lambda fit: (fit[0], fit[1]), reverse=True)
    best = fits[0]
    if len(fits) > 1 and (fits[1][0], fits[1][1]) == (best[0], best[1]):
        return None
    return best[2]


@dataclass
class Placement:
    """Where a new ticket goes: account and site (existing or to create), and how sure we are."""

    account: Account | None
    site: Site | None
    identity_confidence: int
    contact: Contact | None = None
    # The site has to be created (for the account above, or a new provisional account).
    new_site_address: dict | None = None
    provisional: bool = False
    note: str = ""


def placement_for(*, phone: str, email: str, address: dict | None, other_person: str = "") -> Placement:
    """Decide the account and site of a new ticket from the sender and the address they gave.
    `other_person`: the name of a sender known to share the phone/email with another customer;
    a contact of that phone/email under a clearly different name is then not taken for them."""
    contact, ambiguous = contact_match(phone=phone, email=email)
    if contact is not None and other_person and not names_agree(contact.name, other_person):
        contact = None
    if contact is not None:
        account = contact.account
        sites = list(account.sites.all()[:SITE_SCAN_LIMIT])
        matched = site_matching(sites, address)
        lower = IDENTITY_UNCONFIRMED if ambiguous else None
        if matched is not None:
            return Placement(
                account, matched, lower or IDENTITY_CONTACT_ADDRESS_MATCH, contact, note="address matches a site"
            )
        if address and address.get("line1"):
            # They named a street we do not have for this customer: a new site of theirs, which
            # a dispatcher confirms before the job is scheduled.
            return Placement(
                account,
                None,
                IDENTITY_UNCONFIRMED,
                contact,
                new_site_address=address,
                note="new address for a known customer",
            )
        if contact.site_id:
            return Placement(account, contact.site, lower or IDENTITY_CONTACT_SITE, contact, note="contact's site")
        if len(sites) == 1:
            return Placement(
                account, sites[0], lower or IDENTITY_CONTACT_ONLY_SITE, contact, note="account's only site"
            )
        return Placement(account, None, IDENTITY_UNCONFIRMED, contact, note="known customer, site not yet known")
    if address and address.get("line1"):
        number = address["line1"].split()[0]
        nearby = Site.objects.filter(
            address_line1__istartswith=f"{number} ", account__is_provisional=False
        ).select_related("account")[:50]
        matched = site_matching(nearby, address)
        if matched is not None:
            # A stranger reporting a problem at a customer's building (a tenant, a neighbour):
            # the job is probably theirs, but someone confirms who is asking first.
            return Placement(matched.account, matched, IDENTITY_UNCONFIRMED, note="unknown sender at a customer's site")
    confidence = (
        IDENTITY_NEW_CUSTOMER_WITH_ADDRESS
        if (address and address.get("city")) or (address and address.get("postal_code"))
        else IDENTITY_UNKNOWN
    )
    return Placement(None, None, confidence, new_site_address=address, provisional=True, note="new customer")


def provisional_account_create(*, name: str, phone: str, email: str) -> Account:
    label = name or phone or email or "unknown sender"
    account = Account(
        name=f"New customer: {label}"[:200],
        kind=Account.Kind.HOUSEHOLD,
        is_provisional=True,
        billing_email=email or "",
        notes="Opened by intake for a sender we did not know. Confirm the customer or merge into an existing account.",
    )
    account.save(force_insert=True)
    return account


def site_create(*, account: Account, address: dict | None) -> Site:
    """A site for the account: at the address given, or a placeholder until the customer says where."""
    address = address or {}
    line1 = (address.get("line1") or "")[:200]
    site = Site(
        account=account,
        name=(line1 or PROVISIONAL_SITE_NAME)[:200],
        address_line1=line1,
        address_line2=(address.get("line2") or "")[:200],
        city=(address.get("city") or "")[:100],
        region=(address.get("region") or "")[:100],
        postal_code=(address.get("postal_code") or "")[:20],
        timezone=settings.TIME_ZONE,
    )
    site_locate(site)
    site.save(force_insert=True)
    return site


def site_locate(site: Site) -> list[str]:
    """Give a site coordinates from its ZIP code or city, offline (no network call inside
    intake's transaction), and, with DISPATCH_GEOCODER=nominatim, ask for a better point once
    the transaction commits. Returns the fields set (not saved)."""
    location = geocode.offline_locate({"postal_code": site.postal_code, "city": site.city, "region": site.region})
    if location is None or not geocode.more_exact(location.precision, site.geo_precision):
        return []
    site.lat, site.lng, site.geo_precision = location.lat, location.lng, location.precision
    if geocode.geocoder_name() == geocode.NOMINATIM and site.address_line1:
        from .tasks import site_geocode_schedule

        transaction.on_commit(lambda: site_geocode_schedule(site.pk))
    return ["lat", "lng", "geo_precision"]


def site_address_fill(site: Site, address: dict) -> list[str]:
    """Complete a placeholder site with the address the customer gave; returns the fields set."""
    changed = []
    for field, key, limit in (
        ("address_line1", "line1", 200),
        ("address_line2", "line2", 200),
        ("city", "city", 100),
        ("region", "region", 100),
        ("postal_code", "postal_code", 20),
    ):
        value = (address.get(key) or "")[:limit]
        if value and not getattr(site, field):
            setattr(site, field, value)
            changed.append(field)
    if changed and site.name == PROVISIONAL_SITE_NAME and site.address_line1:
        site.name = site.address_line1[:200]
        changed.append("name")
    if changed:
        changed += site_locate(site)
    if changed:
        site.save(update_fields=changed)
    return changed
