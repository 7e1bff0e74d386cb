"""What the technician pages show, worked out from the read models: the job page's sections and
buttons, the day's list, the timeline in people's words."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from dispatch.closeout.gate import SIGNATURE_KEY, template_for
from dispatch.closeout.selectors import labor_and_parts, price_book_search
from dispatch.common.errors import DispatchError
from dispatch.readmodels.job_packet import tech_job_packet
from dispatch.readmodels.tech_day import job_trip, key_label
from dispatch.scheduling import services as scheduling
from dispatch.technicians.selectors import people_names
from dispatch.tickets import policy
from dispatch.tickets.phrases import event_phrase

from .access import Viewer
from .actions import ACTIONS, NOTE_PREFIX, job_refusal

# The files the service worker keeps for the offline shell; their digest names its cache.
SHELL_FILES = ("css/field.css", "js/field.js")
TIMELINE_ENTRIES = 8

# The timeline as a person tells it: "Dana checked in at 10:42".


@lru_cache(maxsize=1)
def shell_version() -> str:
    """A name for the worker's cache that changes whenever a shell file does: a phone then drops
    the old styles and scripts instead of serving them from its cache for ever."""
    digest = hashlib.sha256()
    for name in SHELL_FILES:
        digest.update(Path(finders.find(name)).read_bytes())
    return f"field-{digest.hexdigest()[:12]}"


def job_url(ticket, viewer: Viewer) -> str:
    url = reverse("field:job", args=[ticket.id])
    return f"{url}?as={viewer.technician_id}" if viewer.read_only and viewer.technician_id else url


def by_day(cards) -> list[tuple[str, list[dict]]]:
    """The cards grouped under their day, each with what it still needs in a few words."""
    rows = [
        {
            "card": card,
            "to_finish": missing_summary(missing_items(card.missing_evidence_keys, card.missing_checklist_keys)),
        }
        for card in cards
    ]
    return [(day, list(group)) for day, group in groupby(rows, key=lambda row: row["card"].day)]


def missing_items(evidence_keys, checklist_keys) -> list[dict]:
    """What is still missing to finish, each with the section of the page that fixes it."""
    items = []
    for key in evidence_keys or []:
        anchor = "signature" if key == SIGNATURE_KEY else "notes" if key.startswith(NOTE_PREFIX) else "photos"
        items.append({"label": key_label(key), "anchor": anchor, "key": key})
    for key in checklist_keys or []:
        items.append({"label": key_label(key), "anchor": "checklist", "key": key})
    return items


SECTION_ORDER = ("photos", "notes", "signature", "checklist")
SECTION_NAMES = {
    "photos": ("photo", "photos"),
    "notes": ("note", "notes"),
    "checklist": ("checklist item", "checklist items"),
}


def missing_summary(items: list[dict]) -> list[dict]:
    """The missing items grouped by the section that fixes them: "2 photos", "signature"."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item["anchor"]] = counts.get(item["anchor"], 0) + 1
    summary = []
    for anchor, count in sorted(counts.items(), key=lambda pair: SECTION_ORDER.index(pair[0])):
        if anchor == "signature":
            summary.append({"anchor": anchor, "label": "signature or reason"})
        else:
            one, many = SECTION_NAMES[anchor]
            summary.append({"anchor": anchor, "label": f"{count} {one if count == 1 else many}"})
    return summary


def refusal_missing(error: DispatchError) -> list[dict]:
    """What a refused completion said is missing."""
    details = error.details or {}
    return missing_items(details.get("missing_evidence_keys"), details.get("missing_checklist_keys"))


def _timeline(events: list[dict], zone: ZoneInfo) -> list[dict]:
    names = people_names(e["actor_id"] for e in events if e["actor_type"] == "HUMAN")
    entries = []
    for event in reversed(events[-TIMELINE_ENTRIES:]):
        tool = event["tool_name"]
        phrase = event_phrase(tool, event["payload"])
        who = names.get(str(event["actor_id"])) if event["actor_type"] == "HUMAN" else None
        at = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00")).astimezone(zone)
        entries.append({"who": who or "Real Dispatch", "what": phrase, "at": at})
    return entries


def _buttons(viewer: Viewer, ticket, trip) -> set[str]:
    """The actions the ticket's state, the technician's assignment and the trip allow now."""
    if viewer.read_only or job_refusal(ticket) is not None:
        return set()
    allowed = {name for name, action in ACTIONS.items() if policy.command_allowed(action.command, viewer.actor, ticket)}
    if trip.acknowledged_at or trip.departed_at:
        allowed.discard("acknowledge")
    if trip.departed_at:
        allowed.discard("depart")
    if "resume" in allowed and scheduling.resume_refusal(viewer.actor, ticket) is not None:
        allowed.discard("resume")
    return allowed


def job_context(viewer: Viewer, ticket, *, part_query: str = "", missing: list | None = None) -> dict:
    packet = tech_job_packet(actor=viewer.actor, ticket=ticket, commands=[a.command for a in ACTIONS.values()])[
        "packet"
    ]
    zone = ZoneInfo(ticket.site.timezone)
    trip = job_trip(ticket)
    log = labor_and_parts(ticket)
    requirements = packet["evidence_requirements"]
    # A key named note_... is satisfied by a written note, every other one by a photo.
    note_keys = [item for item in requirements["required_evidence"] if item["key"].startswith(NOTE_PREFIX)]
    photo_keys = [
        item
        for item in requirements["required_evidence"]
        if item["key"] != SIGNATURE_KEY and not item["key"].startswith(NOTE_PREFIX)
    ]
    evidence = requirements["evidence_items"]
    signature_done = any(item["key"] == SIGNATURE_KEY and item["present"] for item in requirements["required_evidence"])
    gate = packet["closeout_gate"]
    finished = job_refusal(ticket) is not None
    buttons = _buttons(viewer, ticket, trip)
    return {
        "viewer": viewer,
        "ticket": ticket,
        "packet": packet,
        "zone": zone,
        "trip": trip,
        "log": log,
        # Labor rows name their technician as text; a technician corrects only their own.
        "me": str(viewer.technician_id) if viewer.technician_id else "",
        "buttons": buttons,
        # Arriving well before the booked visit needs a reason: asked on the page, not after a refusal.
        "early_check_in": scheduling.early_check_in_warning(
            arrived_at=timezone.now(),
            visit_start=scheduling.booked_visit_start(ticket),
            site_timezone=ticket.site.timezone if ticket.site_id else "",
        )
        if "check-in" in buttons
        else "",
        "finished": finished,
        "photo_keys": [{**item, "label": key_label(item["key"])} for item in photo_keys],
        # The first key still missing is the one a new photo or note most likely shows.
        "next_photo_key": next((item["key"] for item in photo_keys if not item["present"]), None),
        "next_note_key": next((item["key"] for item in note_keys if not item["present"]), None),
        "note_keys": [{**item, "label": key_label(item["key"].removeprefix(NOTE_PREFIX))} for item in note_keys],
        "photos": [item for item in evidence if item["kind"] in ("PHOTO", "SIGNATURE")],
        "notes": [item for item in evidence if item["kind"] == "NOTE"],
        "checklist": [{**item, "label": key_label(item["key"])} for item in packet["checklist"]["required_items"]],
        "signature_done": signature_done,
        "still_missing": missing_summary(
            missing_items(gate.get("missing_evidence_keys"), gate.get("missing_checklist_keys"))
        ),
        "incident_name": template.name if (template := template_for(ticket.incident_type)) else ticket.incident_type,
        "timeline": _timeline(packet["timeline"]["latest_events"], zone),
        "part_query": part_query,
        "part_results": price_book_search(part_query, limit=12) if part_query.strip() else [],
        "missing": missing or [],
        "job_url": job_url(ticket, viewer),
        "maps_url": _maps_url(packet["site_and_access"]),
    }


def _maps_url(site: dict) -> str:
    if site.get("lat") is not None and site.get("lng") is not None:
        return f"https://maps.google.com/?q={site['lat']},{site['lng']}"
    return f"https://maps.google.com/?q={quote(site['address']['formatted'] or '')}"
