"""The ticket's timeline in people's words: each audit event as one sentence.

"Riley Morgan dispatched Luis Ortega — emergency bypass: store cannot be secured." The audit
event keeps the exact record (tool, ids, UTC timestamps, payload); this module only reads it.
`event_sentence` is a pure function of an event and a `TimelineNames` (who is who, what each
incident type is called, the company's time zone), so the page looks names up once for all its
events (`selectors.timeline_names`) and a test can write any event's sentence without a database.

Every command the product registers has a sentence here; a tool this module does not know
(added later, or from an older release) gets a generic one built from its command's label, never
from its code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.utils.dateparse import parse_datetime

from .commands import COMMANDS
from .phrases import PHRASES as SHARED_PHRASES
from .states import TicketState

AUTOPILOT_ID = "autopilot"
# The service actors that act on the customer's behalf: their own reply to proposed windows, and
# intake opening or updating a ticket from what the customer wrote.
CUSTOMER_SERVICES = frozenset({"service:customer-reply", "service:intake"})
SYSTEM_NAME = "Real Dispatch"
REASON_MAX = 400


@dataclass(frozen=True)
class TimelineNames:
    """What the sentences need beyond the event: looked up once for the whole timeline."""

    # A back-office user's or technician's user id (as text, the audit's actor_id) -> name.
    users: Mapping[str, str] = field(default_factory=dict)
    # A technician's id (as text) -> display name.
    technicians: Mapping[str, str] = field(default_factory=dict)
    # An incident type code -> its template's name ("DOOR_WONT_LATCH" -> "Door won't latch").
    incident_types: Mapping[str, str] = field(default_factory=dict)
    zone: tzinfo = UTC


@dataclass(frozen=True)
class TimelineSentence:
    """One event in words: `who` opens `text` (kept apart so the page can set it in bold),
    `reason` is why, in the caller's words, and `quote` what someone wrote (a question, a note)."""

    who: str
    text: str
    reason: str = ""
    quote: str = ""

    @property
    def sentence(self) -> str:
        said = f"{self.who} {self.text}"
        if self.quote:
            said += f": “{self.quote}”"
        return f"{said} — {self.reason}" if self.reason else said


# --- reading a payload --------------------------------------------------------------------------------


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _clip(text: str, limit: int = REASON_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def words(code: Any) -> str:
    """An enumeration's code in words: "PARTS_ON_ORDER" -> "parts on order"."""
    return str(code).replace("_", " ").replace(".", " ").strip().lower() if code else ""


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    # A naive time in a payload was written in UTC (the audit's timestamps all are).
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Reading:
    """One event's payload read with the names at hand."""

    def __init__(self, event: Any, names: TimelineNames):
        self.event = event
        self.names = names
        self.payload = _dict(event.payload)
        self.request = _dict(self.payload.get("request"))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.payload.get(key)
        return default if value in (None, "") else value

    def tech(self, tech_id: Any, fallback: str = "a technician") -> str:
        if not tech_id:
            return fallback
        return self.names.technicians.get(str(tech_id), fallback)

    def incident(self, code: Any) -> str:
        if not code:
            return ""
        return self.names.incident_types.get(str(code).strip().upper(), words(code).capitalize())

    def local(self, value: Any) -> datetime | None:
        moment = _instant(value)
        return moment.astimezone(self.names.zone) if moment else None

    def day_time(self, value: Any) -> str:
        moment = self.local(value)
        return f"{moment:%a %b} {moment.day}, {moment:%H:%M}" if moment else ""

    def clock(self, value: Any) -> str:
        moment = self.local(value)
        return f"{moment:%H:%M}" if moment else ""

    def window(self, start: Any, end: Any) -> str:
        """A window as the back office writes it, in the company's zone: "Tue Mar 3, 08:00–10:00"."""
        begin, finish = self.local(start), self.local(end)
        if begin is None:
            return ""
        text = f"{begin:%a %b} {begin.day}, {begin:%H:%M}"
        if finish is None:
            return text
        if finish.date() == begin.date():
            return f"{text}–{finish:%H:%M}"
        return f"{text} – {finish:%a %b} {finish.day}, {finish:%H:%M}"

    def plain(self, text: Any) -> str:
        """Text written by a person or a service, with any code in it in words: an incident type by
        its template's name, any other (a region: SOUTH_BAY) as "South Bay"."""
        text = _text(text)
        if not text:
            return ""
        return re.sub(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", self._code_words, text)

    def _code_words(self, match: re.Match) -> str:
        code = match[0]
        return self.names.incident_types.get(code) or words(code).title()


def money(cents: Any, currency: str = "USD") -> str:
    if not isinstance(cents, (int, float)) or isinstance(cents, bool):
        return ""
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) / 100:,.2f}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"


def _duration(minutes: Any) -> str:
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        return ""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _listed(items: list[str]) -> str:
    items = [item for item in items if item]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- who ----------------------------------------------------------------------------------------------


def _is_customer(event: Any, reading: _Reading) -> bool:
    return (
        event.actor_role == "customer"
        or event.actor_id in CUSTOMER_SERVICES
        or reading.request.get("on_behalf_of") == "customer"
    )


def actor_name(event: Any, names: TimelineNames, *, customer: bool = False) -> str:
    """Who acted, as a person would say it (capitalised, to open a sentence)."""
    actor_id = str(event.actor_id or "")
    if customer:
        return "The customer"
    if actor_id == AUTOPILOT_ID:
        return "Autopilot"
    if event.actor_type == "HUMAN":
        return names.users.get(actor_id) or actor_id or "Someone"
    if event.actor_type == "AGENT":
        label = actor_id.split(":", 1)[1] if actor_id.startswith(("token:", "agent:")) else actor_id
        label = names.users.get(actor_id, label)
        return f"An agent ({label})" if label else "An agent"
    # Wake-ups and background services act for the company itself.
    return SYSTEM_NAME


# --- the sentences --------------------------------------------------------------------------------------
# Each takes the reading and answers what follows the actor's name (and, where the event keeps
# more than its reason, a quote). The reason is found the same way for every tool (`_reason`).

Phrase = Callable[[_Reading], "str | tuple[str, str]"]
PHRASES: dict[str, Phrase] = {}


def phrase(*tools: str) -> Callable[[Phrase], Phrase]:
    def register(writer: Phrase) -> Phrase:
        for tool in tools:
            PHRASES[tool] = writer
        return writer

    return register


CHANNELS = {"SMS": "a text message", "EMAIL": "an email", "WEB": "the web request form", "VOICE": "a phone call"}
INTAKE_FIELDS = {
    "customer_name": "their name",
    "customer_phone": "a phone number",
    "customer_email": "an email address",
    "customer_language": "their language",
    "incident_type": "what is wrong",
    "priority": "how urgent it is",
    "address": "the address",
    "access": "how to get in",
}
DETAIL_FIELDS = {
    "summary": "the summary",
    "description": "the description",
    "customer_name": "the caller's name",
    "customer_phone": "the caller's phone",
    "customer_email": "the caller's email",
    "asset_id": "the asset",
}


def _triaged(reading: _Reading, facts: dict) -> str:
    kind = reading.incident(facts.get("incident_type"))
    priority = words(facts.get("priority"))
    outcome = facts.get("workflow_outcome") or facts.get("outcome")
    said = f"triaged it as {kind}" if kind else "triaged it"
    if priority:
        said += f" ({priority})" if kind else f" as {priority}"
    if outcome == TicketState.READY_TO_SCHEDULE:
        said += ", ready to schedule"
    elif outcome == TicketState.APPROVAL_REQUIRED:
        said += ", waiting on an approval"
    return said


@phrase("ticket.create")
def _created(r: _Reading):
    summary = _text(r.get("summary"))
    return ("opened the ticket", summary)


@phrase("ticket.blind_intake")
def _blind_intake(r: _Reading):
    kind = r.incident(r.get("incident_type"))
    said = "opened the ticket from what the caller said"
    if kind:
        said += f" ({_listed([kind, words(r.get('priority'))])})"
    return (said, _text(r.get("summary")))


@phrase("intake.receive")
def _intake_received(r: _Reading):
    channel = CHANNELS.get(str(r.get("channel", "")).upper(), "a message")
    if _is_customer(r.event, r):
        said = f"wrote in by {channel}, which opened this ticket"
    else:
        said = f"recorded the customer's {channel.split(' ', 1)[-1]}, which opened this ticket"
    triage = _dict(r.get("triage"))
    if triage:
        said += "; " + _triaged(r, triage)
    if r.get("possible_duplicate_of"):
        said += " (it may repeat an open ticket)"
    question = _text(r.get("question"))
    return (said + ("; we asked" if question else ""), question)


@phrase("intake.update")
def _intake_updated(r: _Reading):
    fields = [INTAKE_FIELDS.get(name, words(name)) for name in r.get("fields", []) if isinstance(name, str)]
    told = _listed(fields) or "more details"
    said = f"told us {told}" if _is_customer(r.event, r) else f"recorded {told} from the customer's message"
    changed = _dict(r.get("changes")).get("incident_type")
    if isinstance(changed, dict) and changed.get("to"):
        said += f" (now {r.incident(changed['to'])})"
    triage = _dict(r.get("triage"))
    if triage:
        said += "; " + _triaged(r, triage)
    question = _text(r.get("question"))
    return (said + ("; we asked" if question else ""), question)


@phrase("intake.review")
def _intake_reviewed(r: _Reading):
    return "reviewed a flagged customer message"


@phrase("intake.submit_message")
def _intake_submitted(r: _Reading):
    return "handed over a customer's message"


@phrase("ticket.triage")
def _triage(r: _Reading):
    said = _triaged(r, r.payload).replace("triaged it", "triaged the ticket", 1)
    nte = money(r.get("nte_cents"))
    if nte:
        said += f", not to exceed {nte}"
    if r.get("gate_override"):
        said += ", overriding the intake check"
    return said


@phrase("ticket.request_info")
def _request_info(r: _Reading):
    return ("asked the customer", _text(r.get("question")))


@phrase("ticket.cancel")
def _cancel(r: _Reading):
    code = words(r.get("cancellation_code"))
    return f"cancelled the ticket ({code})" if code else "cancelled the ticket"


@phrase("dispatch.force_hold")
def _force_hold(r: _Reading):
    why = words(r.get("hold_reason"))
    return f"put the job on hold ({why})" if why else "put the job on hold"


@phrase("ticket.resume")
def _resume(r: _Reading):
    to = r.get("to_state")
    label = TicketState(to).label.lower() if to in TicketState.values else ""
    return f"took the job off hold, back to {label}" if label else "took the job off hold"


@phrase("reopen_after_verification")
def _reopen(r: _Reading):
    return "reopened the job"


@phrase("ticket.update_details")
def _details(r: _Reading):
    changed = [DETAIL_FIELDS.get(name, words(name)) for name in _dict(r.get("changes"))]
    return f"corrected {_listed(changed)}" if changed else "edited the ticket's details"


@phrase("tech.request_change")
def _request_change(r: _Reading):
    amount = money(r.get("amount_delta_cents"))
    if r.get("approval_type") == "NTE_INCREASE" or amount:
        return f"asked for approval to spend {amount} more" if amount else "asked for a higher not-to-exceed"
    return "asked for approval of a change"


@phrase("approval.decide")
def _approval(r: _Reading):
    if r.get("decision") == "DENIED":
        return "denied the request"
    nte = money(r.get("nte_cents"))
    return f"approved the request; the not-to-exceed is now {nte}" if nte else "approved the request"


@phrase("assignment.recommend")
def _recommend(r: _Reading):
    count = r.get("candidate_count")
    said = "asked which technician fits best"
    if isinstance(count, int):
        said += f" ({_plural(count, 'candidate')}"
        said += f", {r.tech(r.get('recommended_tech_id'))} first)" if r.get("recommended_tech_id") else ")"
    return said


@phrase("assignment.dispatch")
def _dispatch(r: _Reading):
    return f"dispatched {r.tech(r.get('tech_id'))}"


@phrase("dispatch.force_unassign")
def _unassign(r: _Reading):
    previous = r.get("previous_tech_id")
    return f"took {r.tech(previous)} off the job" if previous else "cleared the job's technician"


def _options(r: _Reading, options: list) -> str:
    options = [_dict(option) for option in options if isinstance(option, dict)]
    windows = [r.window(option.get("start"), option.get("end")) for option in options]
    techs = {option.get("tech_id") for option in options}
    said = " or ".join(window for window in windows if window)
    if len(techs) == 1 and None not in techs:
        said += f" with {r.tech(techs.pop())}"
    return said


@phrase("schedule.propose")
def _propose(r: _Reading):
    options = r.get("options", [])
    count = len(options) if isinstance(options, list) else 0
    if not count:
        return "offered the customer times"
    return f"offered the customer {_plural(count, 'window')}: {_options(r, options)}"


@phrase("schedule.suggest")
def _suggest(r: _Reading):
    return "asked the slot engine for windows"


@phrase("schedule.confirm")
def _confirm(r: _Reading):
    window = r.window(r.get("start"), r.get("end"))
    said = f"confirmed the {window} window" if window else "confirmed a window"
    if r.get("tech_id"):
        said += f" with {r.tech(r.get('tech_id'))}"
    option = r.request.get("reply_option")
    if isinstance(option, int):
        said += f" (replied {option})"
    return said


@phrase("schedule.hold")
def _hold(r: _Reading):
    until = r.day_time(_dict(r.get("confirmation_window")).get("end"))
    said = "held the times for the customer to confirm"
    return f"{said} by {until}" if until else said


@phrase("schedule.release")
def _release(r: _Reading):
    return "released the hold: the customer confirmed"


@phrase("schedule.rollback")
def _rollback(r: _Reading):
    return "rolled the booking back from the customer's hold"


@phrase("schedule.book")
def _book(r: _Reading):
    window = r.window(r.get("start"), r.get("end"))
    said = f"booked {r.tech(r.get('tech_id'))}"
    return f"{said} for {window}" if window else said


def _moved(r: _Reading) -> str:
    before, after = _dict(r.get("moved_from")), _dict(r.get("moved_to"))
    old_tech, new_tech = before.get("tech_id"), after.get("tech_id")
    old_window, new_window = (
        r.window(before.get("start"), before.get("end")),
        r.window(after.get("start"), after.get("end")),
    )
    if old_tech == new_tech:
        return f"moved {r.tech(new_tech)}'s visit from {old_window} to {new_window}"
    if old_window == new_window:
        return f"handed the {new_window} visit from {r.tech(old_tech)} to {r.tech(new_tech)}"
    return f"moved the visit from {r.tech(old_tech)}, {old_window}, to {r.tech(new_tech)}, {new_window}"


@phrase("schedule.move")
def _move(r: _Reading):
    if not r.get("moved_to"):
        return f"moved the visit to {r.tech(r.get('tech_id'))}, {r.day_time(r.get('start'))}"
    return _moved(r)


@phrase("schedule.optimize_day")
def _replanned(r: _Reading):
    if not r.get("moved_to"):
        return "re-planned the day"
    return "re-planned the day and " + _moved(r)


@phrase("technician.time_off_add")
def _time_off(r: _Reading):
    return f"added time off for {r.tech(r.get('technician_id') or r.get('tech_id'), 'a technician')}"


ESCALATIONS = {
    "STALE_PROPOSAL": "flagged that the customer has not answered the offered windows",
    "UNACKNOWLEDGED_DISPATCH": "flagged that the technician has not acknowledged the dispatch",
    "SLA_RISK": "flagged that the job may miss its response time",
    "HANDOVER": "handed the job to a person",
    "TECHNICIAN_MESSAGE": "flagged a message from the technician",
}
ESCALATION_NAMES = {
    "STALE_PROPOSAL": "unanswered proposal",
    "UNACKNOWLEDGED_DISPATCH": "unacknowledged dispatch",
    "SLA_RISK": "response-time",
    "HANDOVER": "needs-a-person",
    "TECHNICIAN_MESSAGE": "technician message",
}


@phrase("dispatch.escalate")
def _escalate(r: _Reading):
    kind = str(r.get("kind", ""))
    return ESCALATIONS.get(kind, f"raised an alert ({words(kind)})" if kind else "raised an alert")


@phrase("dispatch.escalation_resolve")
def _escalation_resolved(r: _Reading):
    kind = str(r.get("kind", ""))
    name = ESCALATION_NAMES.get(kind, words(kind))
    return f"closed the {name} alert" if name else "closed an alert"


@phrase("customer.remind")
def _remind(r: _Reading):
    if r.get("reminder") == "question":
        return ("reminded the customer of our question", _text(r.get("question")))
    when = r.day_time(r.get("appointment_start"))
    return f"reminded the customer of the visit on {when}" if when else "reminded the customer of the visit"


@phrase("tech.message")
def _tech_message(r: _Reading):
    return ("texted the dispatcher", _text(r.get("text")))


@phrase("tech.acknowledge")
def _acknowledge(r: _Reading):
    return "acknowledged the dispatch"


@phrase("tech.depart")
def _depart(r: _Reading):
    eta = r.clock(r.get("eta"))
    return f"set off for the site, arriving about {eta}" if eta else "set off for the site"


@phrase("tech.eta_update")
def _eta(r: _Reading):
    eta = r.clock(r.get("eta"))
    said = f"now expects to arrive about {eta}" if eta else "updated the arrival estimate"
    if r.get("delay_notice"):
        said += "; the customer was told of the delay"
    return said


@phrase("tech.check_in")
def _check_in(r: _Reading):
    at = r.clock(r.get("arrived_at") or r.get("timestamp"))
    return f"checked in on site at {at}" if at else "checked in on site"


@phrase("tech.pause")
def _pause(r: _Reading):
    return "paused work"


@phrase("tech.resume")
def _tech_resume(r: _Reading):
    return "resumed work"


@phrase("closeout.add_evidence")
def _evidence(r: _Reading):
    kind = str(r.get("evidence_kind") or r.get("kind") or "").upper()
    metadata = _dict(r.get("metadata"))
    caption = _text(metadata.get("caption")) or words(r.get("evidence_key")).capitalize()
    if kind == "PHOTO":
        return ("added a photo", caption)
    if kind == "SIGNATURE":
        signer = _text(metadata.get("signed_by"))
        return f"added the customer's signature ({signer})" if signer else "added the customer's signature"
    if kind == "NOTE":
        return ("added a note", _text(r.get("text")) or _text(metadata.get("text")) or caption)
    return ("added evidence", caption)


@phrase("closeout.evidence_exception")
def _evidence_exception(r: _Reading):
    refs = [words(ref) for ref in r.get("evidence_refs", []) if isinstance(ref, str)]
    until = r.day_time(r.get("expires_at"))
    said = f"excused the missing {_listed(refs)}" if refs else "excused missing evidence"
    return f"{said} until {until}" if until else said


@phrase("closeout.save_checklist")
def _checklist(r: _Reading):
    answers = _dict(r.get("saved_checklist_status") or r.get("checklist_status"))
    done = sum(1 for value in answers.values() if value is True)
    return f"saved the checklist ({done} of {len(answers)} done)" if answers else "saved the checklist"


@phrase("closeout.candidate", "tech.complete")
def _complete(r: _Reading):
    check = _dict(r.get("closeout_check"))
    said = "completed the work" if r.event.tool_name == "tech.complete" else "proposed the job for closeout"
    if check.get("ready"):
        count = check.get("evidence_count")
        said += f", with all required evidence ({_plural(count, 'item')})" if isinstance(count, int) else ""
    return said


@phrase("dispatch.manual_bypass")
def _bypass(r: _Reading):
    return "completed the job without the evidence gate"


@phrase("qa.verify")
def _qa(r: _Reading):
    result = r.get("verification_result") or r.get("result")
    return "sent the work back from QA" if result == "FAIL" else "verified the work in QA"


@phrase("closeout.add_labor")
def _labor(r: _Reading):
    spent = _duration(r.get("minutes"))
    said = f"logged {spent} of labor" if spent else "logged labor"
    return (said, _text(r.get("description")))


@phrase("closeout.update_labor")
def _labor_edit(r: _Reading):
    return "corrected a labor entry"


@phrase("closeout.add_part")
def _part(r: _Reading):
    what = _text(r.get("description")) or _text(r.get("sku")) or "a part"
    quantity = str(r.get("quantity", "")).removesuffix(".00")
    return f"logged {quantity} × {what}" if quantity and quantity != "1" else f"logged a part: {what}"


@phrase("billing.generate_invoice")
def _invoice(r: _Reading):
    said = f"drafted invoice {r.get('invoice_number', '')}".rstrip()
    total = money(r.get("total_cents"))
    if total:
        said += f" for {total}"
    if r.get("exceeds_nte"):
        said += ", over the not-to-exceed"
    return said


@phrase("billing.edit_invoice")
def _invoice_edit(r: _Reading):
    total = money(r.get("total_cents"))
    said = f"edited invoice {r.get('invoice_number', '')}".rstrip()
    return f"{said}; it now comes to {total}" if total else said


@phrase("billing.approve_invoice")
def _invoice_approve(r: _Reading):
    said = f"approved invoice {r.get('invoice_number', '')}".rstrip()
    total = money(r.get("total_cents"))
    if total:
        said += f" ({total})"
    if r.get("emailed_to"):
        said += " and emailed it to the customer"
    return said


@phrase("billing.revise_invoice")
def _invoice_revise(r: _Reading):
    said = f"started a corrected invoice {r.get('invoice_number', '')}".rstrip()
    replaced = r.get("superseded_number")
    return f"{said}, replacing {replaced}" if replaced else said


@phrase("closeout.render_packet")
def _packet(r: _Reading):
    version = r.get("version")
    return f"issued version {version} of the closeout packet" if version else "issued the closeout packet"


@phrase("closeout.packet_compiled")
def _packet_compiled(r: _Reading):
    version = r.get("version")
    return f"compiled version {version} of the closeout packet" if version else "compiled the closeout packet"


@phrase("ticket.close")
def _close(r: _Reading):
    # Unbilled work is closed on purpose, with a reason (shown after the sentence): say so.
    if r.payload.get("invoice_draft") is False:
        return "closed the job without an invoice draft"
    return "closed the ticket"


@phrase("ticket.force_close")
def _force_close(r: _Reading):
    return "closed the job without QA"


@phrase("ops.autonomy.pause", "ops.autonomy.rollback")
def _autonomy(r: _Reading):
    verb = "paused" if r.event.tool_name == "ops.autonomy.pause" else "resumed"
    kind = r.incident(r.get("incident_type"))
    if r.get("ticket_id"):
        return f"{verb} the agents on this ticket"
    return f"{verb} the agents on {kind} jobs" if kind else f"{verb} the agents"


@phrase("outbox.replay")
def _replay(r: _Reading):
    channel = {"SMS": "text message", "EMAIL": "email"}.get(str(r.get("channel", "")), "message")
    return f"sent a failed {channel} again"


@phrase("autopilot.suggestion_apply")
def _suggestion_apply(r: _Reading):
    return "applied the autopilot's suggestion"


@phrase("autopilot.suggestion_dismiss")
def _suggestion_dismiss(r: _Reading):
    action = COMMANDS.get(str(r.get("suggested_action", "")))
    if action is not None:
        return f"dismissed the autopilot's suggestion (“{action.label}”)"
    return "dismissed the autopilot's suggestion"


# The toolset's reads write no audit event today; should one ever be recorded, it still reads well.
READS = {
    "ticket.get": "read the ticket",
    "ticket.timeline": "read the ticket's timeline",
    "closeout.get_packet": "read the closeout packet",
    "billing.get_invoice": "read the invoice",
    "closeout.list_evidence": "listed the evidence",
    "dispatcher.cockpit": "opened the dispatcher's queue",
    "tech.job_packet": "opened the technician's job packet",
    "ops.autonomy.state": "read the autonomy controls",
    "ops.autonomy.replay": "read the ticket's autonomy history",
}
for _tool, _said in READS.items():
    PHRASES[_tool] = lambda r, said=_said: said


def _generic(tool: str) -> str:
    shared = SHARED_PHRASES.get(tool)
    if shared:
        # The words the technician's page and the closeout packet use for it.
        return shared
    command = COMMANDS.get(tool)
    label = command.label if command is not None and command.label != tool else ""
    if label:
        return f"used “{label}”"
    # A tool no command knows (an older release's): its last word, in words, is the best there is.
    return f"took an action on the ticket ({words(tool.rsplit('.', 1)[-1])})"


# --- the reason -------------------------------------------------------------------------------------------
# The caller's `reason` (top level or in the request: the autopilot always gives one), then the
# field each tool keeps its why in.

REASON_FIELDS = {
    "dispatch.manual_bypass": ("bypass_rationale",),
    "ticket.force_close": ("override_reason",),
    "closeout.evidence_exception": ("exception_reason",),
    "billing.approve_invoice": ("nte_override_reason",),
    "approval.decide": ("notes",),
    "qa.verify": ("notes",),
    "dispatch.escalation_resolve": ("resolution",),
    "autopilot.suggestion_dismiss": ("note",),
}


def _reason(r: _Reading) -> str:
    tool = r.event.tool_name
    reason = r.plain(r.payload.get("reason")) or r.plain(r.request.get("reason"))
    if tool == "assignment.dispatch":
        rationale = r.plain(r.get("dispatch_rationale"))
        if r.get("dispatch_mode") == "EMERGENCY_BYPASS":
            return _clip(f"emergency bypass: {reason or rationale}".rstrip(": "))
        return _clip(reason or rationale)
    if not reason:
        for key in REASON_FIELDS.get(tool, ()):
            reason = r.plain(r.get(key))
            if reason:
                break
    return _clip(reason)


# --- the entry point ----------------------------------------------------------------------------------------


def event_sentence(event: Any, names: TimelineNames) -> TimelineSentence:
    """One audit event (or anything with its fields: tool_name, actor_type, actor_id,
    actor_role, payload) in words."""
    reading = _Reading(event, names)
    customer = _is_customer(event, reading)
    writer = PHRASES.get(event.tool_name)
    said = writer(reading) if writer is not None else _generic(event.tool_name)
    text, quote = (said, "") if isinstance(said, str) else said
    return TimelineSentence(
        who=actor_name(event, names, customer=customer),
        text=text,
        reason=_reason(reading),
        quote=_clip(reading.plain(quote)),
    )
