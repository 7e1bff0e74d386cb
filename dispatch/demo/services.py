"""Load the demo company and walk its ticket stories through the real services.

Nothing here writes a ticket, a transition or an audit event itself: every step of every story
is one call of the service a dispatcher, an agent, a technician, QA or finance would trigger,
so each demo ticket carries the same audit trail a real one would.
"""

from __future__ import annotations

import io
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import time_machine
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw
from reportlab.pdfgen import canvas

from dispatch.closeout import services as closeout
from dispatch.closeout.models import IncidentTemplate
from dispatch.closeout.seed_templates import templates_load
from dispatch.common.actors import Actor, ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role, role_groups_sync
from dispatch.scheduling import services as scheduling
from dispatch.tickets import approvals
from dispatch.tickets import services as tickets
from dispatch.tickets.models import Approval, Ticket

from .company import LOGINS, TECHNICIAN_PASSWORD, TECHNICIANS, Company, company_load
from .stories import STORIES, Step, Story
from .timeline import Window, fit_after, step_moments, windows_place, working_periods

AGENT_ID = "agent:dispatch-assistant"

# The part a job of each kind usually uses, when the story names none.
USUAL_PARTS: dict[str, tuple[tuple[str, int], ...]] = {
    "DOOR_WONT_LATCH": (("STRIKE-478-US26D", 1),),
    "CLOSER_LEAKING_OR_SLAMMING": (("CLOSER-LCN4040XP", 1),),
    "HARDWARE_REPLACEMENT": (("LEVER-SCH-ND-RHO", 1),),
    "AUTO_OPERATOR_FAULT": (("SENSOR-BEA-IXIO", 1),),
    "CANNOT_SECURE_ENTRY": (("CYL-MORTISE-SFIC", 2),),
    "FRAME_OR_GLASS_DAMAGE": (("GLASS-TEMP-14", 1),),
}


@dataclass
class DemoSummary:
    created_tickets: int = 0
    existing_tickets: int = 0
    states: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    # Demo logins whose user existed before with another password (left untouched).
    login_conflicts: list[str] = field(default_factory=list)


@dataclass
class Walk:
    """One story in progress: the ticket it made and what later steps need to know."""

    story: Story
    ticket: Ticket | None = None
    evidence_ids: list[str] = field(default_factory=list)
    approval_id: str = ""


class Walker:
    def __init__(self, company: Company, now: datetime, stories: tuple[Story, ...]):
        self.company = company
        self.now = now
        self.templates = {t.incident_type: t for t in IncidentTemplate.objects.all()}
        self.windows = self._windows_place(stories)

    def _minutes(self, story: Story) -> int:
        template = self.templates.get(story.incident_type)
        return template.default_duration_minutes if template else 90

    def _windows_place(self, stories: tuple[Story, ...]) -> dict[str, Window]:
        """Every story's booked window, placed on its technician's working time (timeline.py)."""
        by_technician: dict[str, list[Story]] = defaultdict(list)
        for story in stories:
            if story.tech:
                by_technician[story.tech].append(story)
        windows: dict[str, Window] = {}
        for key, own in by_technician.items():
            periods = working_periods(self.company.technicians[key], self.now)
            minutes = {story.key: self._minutes(story) for story in own}
            windows.update(windows_place(own, periods=periods, now=self.now, minutes=minutes))
        return windows

    # --- who acts ---------------------------------------------------------------------------

    def _human(self, username: str, role: Role, story: Story, **extra) -> Actor:
        user = self.company.users[username]
        return Actor(
            actor_type=ActorType.HUMAN,
            actor_id=str(user.pk),
            role=role,
            user_id=user.pk,
            request_id=str(uuid.uuid4()),
            correlation_id=f"demo:{story.key}",
            **extra,
        )

    def actor(self, who: str, story: Story) -> Actor:
        if who == "agent":
            return Actor(
                actor_type=ActorType.AGENT,
                actor_id=AGENT_ID,
                role=Role.AGENT,
                request_id=str(uuid.uuid4()),
                correlation_id=f"demo:{story.key}",
            )
        if who == "tech":
            technician = self.company.technicians[story.tech]
            return self._human(technician.user.username, Role.TECHNICIAN, story, technician_id=technician.pk)
        roles = {"dispatcher": Role.DISPATCHER, "qa": Role.QA, "finance": Role.FINANCE, "approver": Role.APPROVER}
        return self._human(who, roles[who], story)

    # --- the walk ---------------------------------------------------------------------------

    def story_walk(self, story: Story) -> None:
        """Apply the story's steps in order; all of it commits, or none of it does."""
        walk = Walk(story=story)
        moments = step_moments(story, self.windows.get(story.key), now=self.now)
        with transaction.atomic():
            for step, moment in zip(story.steps, moments, strict=True):
                try:
                    # Each step happens at its own moment of the story, so the trail, the
                    # messages and the checks the services make (a window must still be ahead
                    # when it is booked) read as they would have on the day. time-machine moves
                    # the clock, as manage.py simulate_day does; nothing is slept on.
                    with time_machine.travel(moment, tick=True):
                        getattr(self, f"_{step.action}")(walk, step)
                except DispatchError as exc:
                    exc.add_note(f"demo story {story.key!r}, step {step.action!r} by {step.by}")
                    raise
                if walk.ticket is not None:
                    walk.ticket.refresh_from_db()

    def _window(self, walk: Walk) -> tuple[datetime, datetime]:
        window = self.windows[walk.story.key]
        return window.start, window.end

    def _site(self, story: Story):
        return self.company.sites[story.site]

    def _contact(self, story: Story):
        contacts = self.company.contacts[story.account]
        if story.contact:
            return next(c for c in contacts if c.email == story.contact)
        site = self._site(story)
        return next((c for c in contacts if c.site_id == site.pk), contacts[0])

    def _tech_id(self, walk: Walk) -> str:
        return str(self.company.technicians[walk.story.tech].pk)

    # --- one method per step action; each makes one service call (evidence, parts: one per item) ---

    def _create(self, walk: Walk, step: Step) -> None:
        story, site, contact = walk.story, self._site(walk.story), self._contact(walk.story)
        asset = self.company.assets[story.asset] if story.asset else None
        fields: dict[str, Any] = {
            "customer_name": contact.name,
            "customer_phone": contact.phone,
            "customer_email": contact.email,
        }
        if step.by == "agent":
            # An agent that read the customer's message states how sure it is of who wrote and what it is.
            fields.update(identity_confidence=96, classification_confidence=84, incident_type=story.incident_type)
        payload = {
            "account_id": str(site.account_id),
            "site_id": str(site.pk),
            "summary": story.summary,
            "description": story.description,
            "customer": {"name": contact.name, "phone": contact.phone, "email": contact.email},
        }
        if asset is not None:
            payload["asset_id"] = str(asset.pk)
        if story.nte_cents is not None:
            payload["nte_cents"] = story.nte_cents
        outcome = tickets.ticket_create(
            actor=self.actor(step.by, story),
            account_id=site.account_id,
            site_id=site.pk,
            summary=story.summary,
            description=story.description,
            asset_id=asset.pk if asset else None,
            nte_cents=story.nte_cents,
            request=payload,
            **fields,
        )
        walk.ticket = outcome.ticket

    def _request_info(self, walk: Walk, step: Step) -> None:
        tickets.ticket_request_info(
            actor=self.actor(step.by, walk.story), ticket_id=walk.ticket.pk, question=step.options["question"]
        )

    def _triage(self, walk: Walk, step: Step) -> None:
        story = walk.story
        tickets.ticket_triage(
            actor=self.actor(step.by, story),
            ticket_id=walk.ticket.pk,
            priority=story.priority,
            incident_type=story.incident_type,
            nte_cents=story.nte_cents,
            outcome=step.options["outcome"],
            approval_reason=step.options.get("approval_reason", ""),
            approval_amount_delta_cents=step.options.get("approval_amount_delta_cents"),
        )

    def _cancel(self, walk: Walk, step: Step) -> None:
        tickets.ticket_cancel(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            reason=step.options["reason"],
            cancellation_code=step.options.get("cancellation_code", ""),
        )

    def _hold(self, walk: Walk, step: Step) -> None:
        tickets.ticket_force_hold(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            reason=step.options["reason"],
            hold_reason=step.options.get("hold_reason", ""),
        )

    def _propose(self, walk: Walk, step: Step) -> None:
        # The story's window first, as an alternative the technician's next working day at that time.
        start, end = self._window(walk)
        periods = working_periods(self.company.technicians[walk.story.tech], self.now)
        later = fit_after(periods, start + timedelta(days=1), end - start)
        options = [
            {"start": option.isoformat(), "end": (option + (end - start)).isoformat(), "tech_id": self._tech_id(walk)}
            for option in (start, later)
        ]
        scheduling.schedule_propose(actor=self.actor(step.by, walk.story), ticket_id=walk.ticket.pk, options=options)

    def _confirm(self, walk: Walk, step: Step) -> None:
        start, end = self._window(walk)
        scheduling.schedule_confirm(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            start=start,
            end=end,
            tech_id=self._tech_id(walk),
        )

    def _schedule_hold(self, walk: Walk, step: Step) -> None:
        # The customer has from now until the proposed window starts to confirm it.
        start, _end = self._window(walk)
        scheduling.schedule_hold(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            hold_reason=step.options["hold_reason"],
            confirmation_window={"start": timezone.now().isoformat(), "end": start.isoformat()},
        )

    def _dispatch(self, walk: Walk, step: Step) -> None:
        technician = self.company.technicians[walk.story.tech]
        scheduling.assignment_dispatch(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            tech_id=technician.pk,
            dispatch_mode=step.options.get("dispatch_mode", "STANDARD"),
            dispatch_rationale=step.options.get(
                "dispatch_rationale",
                f"{technician.display_name} covers {self._site(walk.story).service_region} "
                f"and is rated for {walk.story.incident_type}.",
            ),
            dispatch_confirmation=True,
        )

    def _check_in(self, walk: Walk, step: Step) -> None:
        site = self._site(walk.story)
        arrived = timezone.now()
        scheduling.tech_check_in(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            timestamp=arrived,
            location={
                "lat": float(site.lat + Decimal("0.000150")),
                "lng": float(site.lng - Decimal("0.000120")),
                "accuracy_m": 12,
            },
        )

    def _evidence(self, walk: Walk, step: Step) -> None:
        # The template's required evidence, or only the items the step names (a job half done).
        template = self.templates[walk.story.incident_type]
        keys = step.options.get("keys") or template.required_evidence_keys
        for key in keys:
            outcome = closeout.evidence_add(
                actor=self.actor(step.by, walk.story), ticket_id=walk.ticket.pk, **self._evidence_item(walk, key)
            )
            walk.evidence_ids.append(str(outcome.result.pk))

    def _evidence_item(self, walk: Walk, key: str) -> dict:
        story, site = walk.story, self._site(walk.story)
        start, _end = self._window(walk)
        if key.startswith("photo_"):
            taken = min(start + timedelta(minutes=10 if "before" in key else 55), timezone.now())
            label = key.removeprefix("photo_").replace("_", " ")
            return {
                "kind": "PHOTO",
                "evidence_key": key,
                "upload": demo_photo(title=label.capitalize(), subtitle=f"{site.name} · {story.summary}", taken=taken),
                "metadata": {"caption": label.capitalize()},
            }
        if key.startswith("signature"):
            contact = self._contact(story)
            return {
                "kind": "SIGNATURE",
                "evidence_key": key,
                "upload": demo_signature(contact.name),
                "metadata": {"signed_by": contact.name},
            }
        text = NOTES.get(key, "Adjusted and tested ten open/close cycles; all normal.")
        technician = self.company.technicians[story.tech]
        return {
            "kind": "NOTE",
            "evidence_key": key,
            "upload": demo_note(
                title=key.removeprefix("note_").replace("_", " ").capitalize(),
                text=text,
                signed=f"{technician.display_name}, {site.name}",
            ),
            "metadata": {"text": text},
        }

    def _parts(self, walk: Walk, step: Step) -> None:
        story = walk.story
        parts = story.parts if story.parts is not None else USUAL_PARTS.get(story.incident_type, ())
        for sku, quantity in parts:
            closeout.part_add(actor=self.actor(step.by, story), ticket_id=walk.ticket.pk, sku=sku, quantity=quantity)

    def _labor(self, walk: Walk, step: Step) -> None:
        template = self.templates[walk.story.incident_type]
        start, _end = self._window(walk)
        closeout.labor_add(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            minutes=template.default_duration_minutes,
            description=f"On site: {template.name.lower()}",
            # The work happened in the booked window: its rate class is that time's.
            worked_at=max(min(start, timezone.now()), walk.ticket.created_at).isoformat(),
        )

    def _complete(self, walk: Walk, step: Step) -> None:
        template = self.templates[walk.story.incident_type]
        closeout.tech_complete(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            checklist_status=dict.fromkeys(template.required_checklist_keys, True),
            evidence_refs=list(walk.evidence_ids),
        )

    def _verify(self, walk: Walk, step: Step) -> None:
        closeout.qa_verify(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            timestamp=timezone.now(),
            result="PASS",
            notes="Before/after photos match the checklist; customer signed.",
        )

    def _invoice(self, walk: Walk, step: Step) -> None:
        closeout.invoice_generate(actor=self.actor(step.by, walk.story), ticket_id=walk.ticket.pk)

    def _approve_invoice(self, walk: Walk, step: Step) -> None:
        closeout.invoice_approve(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            nte_override_reason="Approved with the customer's facilities manager by phone.",
        )

    def _close(self, walk: Walk, step: Step) -> None:
        closeout.ticket_close(
            actor=self.actor(step.by, walk.story), ticket_id=walk.ticket.pk, reason="Invoice sent; job closed."
        )
        # The demo shows the packet at once rather than when the worker first runs.
        closeout.closeout_packet_build(ticket_id=walk.ticket.pk)

    def _request_change(self, walk: Walk, step: Step) -> None:
        outcome = approvals.change_request(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            approval_type=step.options["approval_type"],
            reason=step.options["reason"],
            amount_delta_cents=step.options.get("amount_delta_cents"),
        )
        walk.approval_id = str(outcome.result.pk)

    def _approval_decide(self, walk: Walk, step: Step) -> None:
        approvals.approval_decide(
            actor=self.actor(step.by, walk.story),
            ticket_id=walk.ticket.pk,
            approval_id=walk.approval_id,
            decision=step.options["decision"],
            notes=step.options.get("notes", ""),
        )


NOTES = {
    "note_adjustments_and_test_cycles": "Re-aligned strike 2 mm, adjusted latch speed; 10 test cycles, latches "
    "every time.",
    "note_sweep_and_latch_speed_settings": "Sweep 5 s from 90°, latch 2 s; backcheck set; no oil on the body.",
    "note_cycle_and_sensor_tests": "Ran 20 open/close cycles; presence and motion sensors pass the AAADM checks.",
}


def demo_photo(*, title: str, subtitle: str, taken: datetime):
    """A small JPEG standing in for a technician's photo, with the capture time in its EXIF."""
    image = Image.new("RGB", (640, 480), (214, 219, 223))
    draw = ImageDraw.Draw(image)
    # A door in its frame, so the packet's thumbnails look like what they stand for.
    draw.rectangle((220, 60, 420, 440), outline=(70, 70, 70), width=8)
    draw.rectangle((232, 72, 408, 432), fill=(150, 120, 90))
    draw.ellipse((380, 240, 396, 256), fill=(200, 200, 200))
    draw.rectangle((0, 0, 640, 44), fill=(30, 41, 59))
    draw.text((12, 14), title[:80], fill=(255, 255, 255))
    draw.text((12, 452), subtitle[:100], fill=(30, 30, 30))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70, exif=exif)
    return ContentFile(buffer.getvalue(), name="photo.jpg")


def demo_note(*, title: str, text: str, signed: str):
    """A one-page PDF of a technician's written note."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(612, 396))
    pdf.setTitle(title)
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(48, 340, title)
    pdf.setFont("Helvetica", 11)
    pdf.drawString(48, 310, text)
    pdf.setFont("Helvetica-Oblique", 9)
    pdf.drawString(48, 60, signed)
    pdf.showPage()
    pdf.save()
    return ContentFile(buffer.getvalue(), name="note.pdf")


def demo_signature(name: str):
    """A PNG of a customer's signature line."""
    image = Image.new("RGB", (480, 160), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.line((20, 120, 460, 120), fill=(120, 120, 120), width=2)
    points = [(30 + i * 12, 90 + (18 if i % 3 == 0 else -14 if i % 3 == 1 else 4)) for i in range(30)]
    draw.line(points, fill=(20, 40, 120), width=3)
    draw.text((20, 130), name, fill=(60, 60, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="signature.png")


def _story_ticket(company: Company, story: Story) -> Ticket | None:
    """The ticket a story made on an earlier run: the demo's natural key is site + summary."""
    return Ticket.objects.filter(site=company.sites[story.site], summary=story.summary).order_by("created_at").first()


def demo_load(*, now: datetime | None = None, stories: tuple[Story, ...] = STORIES) -> DemoSummary:
    """Create the demo company and its tickets; a second run finds everything and writes nothing."""
    summary = DemoSummary()
    # Role groups are made after every migrate; syncing here too keeps load_demo safe on its own.
    role_groups_sync()
    templates_load(IncidentTemplate)
    with transaction.atomic():
        company = company_load()
    walker = Walker(company, now or timezone.now(), stories)
    for story in stories:
        if _story_ticket(company, story) is not None:
            summary.existing_tickets += 1
            continue
        walker.story_walk(story)
        summary.created_tickets += 1
    tickets = [t for t in (_story_ticket(company, story) for story in stories) if t is not None]
    for ticket in tickets:
        summary.states[ticket.state] = summary.states.get(ticket.state, 0) + 1
    summary.login_conflicts = _login_conflicts(company)
    summary.counts = {
        "accounts": len(company.accounts),
        "sites": len(company.sites),
        "assets": len(company.assets),
        "contacts": sum(len(c) for c in company.contacts.values()),
        "technicians": len(company.technicians),
        "tickets": len(tickets),
        "approvals pending": Approval.objects.filter(ticket__in=tickets, status=Approval.Status.PENDING).count(),
    }
    return summary


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, password, what it is for), as load_demo prints them."""
    dana = next(t for t in TECHNICIANS if t.key == "dana")
    logins = [(login.username, login.password, login.role.value) for login in LOGINS]
    logins.insert(1, (dana.username, TECHNICIAN_PASSWORD, f"technician ({dana.display_name})"))
    return logins


def _login_conflicts(company: Company) -> list[str]:
    """Printed demo logins that will not work because the user existed before with another password."""
    return [
        username for username, password, _what in demo_logins() if not company.users[username].check_password(password)
    ]
