"""The toolset: the ONLY list of tools the agent API offers.

Each entry names a contract tool, the Command that governs it (roles, from-states, resulting
state — the very object the service hands to the executor, so the API and the service check
the same rules), the handler that calls one service or selector, and a description written
for a language model. Method, route, payload schema and idempotency come from the vendored
contract file; URLs, /tools, the OpenAPI document and the docs page are all built from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from dispatch.closeout import services as closeout
from dispatch.intake import services as intake
from dispatch.messaging import services as messaging
from dispatch.scheduling import day_planner, eta
from dispatch.scheduling import services as scheduling
from dispatch.tickets import approvals
from dispatch.tickets import services as tickets
from dispatch.tickets.commands import Command, command

from . import handlers
from .payloads import upload_schema, validator_for

CONTRACT_FILE = Path(__file__).resolve().parent / "contract" / "dispatch-contract.v1.json"


@lru_cache(maxsize=1)
def contract() -> dict:
    """The vendored dispatch-api v1 contract (its digest is pinned by a test)."""
    return json.loads(CONTRACT_FILE.read_text())


@lru_cache(maxsize=1)
def contract_tools() -> dict[str, dict]:
    return {entry["tool_name"]: entry for entry in contract()["tools"]}


# --- Commands of the read tools (the write tools' Commands live with their services) ---------

READ_ROLES = ["dispatcher", "agent", "customer", "technician", "qa", "approver", "finance"]
# The closeout packet and the invoice: the office's documents (a customer reads their own through
# the signed status link, not the toolset).
DOCUMENT_ROLES = ["dispatcher", "qa", "finance", "approver"]
CLOSEOUT_GET_PACKET = command("closeout.get_packet", DOCUMENT_ROLES, None, None, "Read the closeout packet")
BILLING_GET_INVOICE = command("billing.get_invoice", DOCUMENT_ROLES, None, None, "Read the invoice")
TICKET_GET = command("ticket.get", READ_ROLES, None, None, "Read the ticket")
TICKET_TIMELINE = command("ticket.timeline", READ_ROLES, None, None, "Read the timeline")
CLOSEOUT_LIST_EVIDENCE = command(
    "closeout.list_evidence",
    ["dispatcher", "agent", "technician", "qa", "approver", "finance"],
    None,
    None,
    "List evidence",
)
DISPATCHER_COCKPIT = command("dispatcher.cockpit", ["dispatcher"], None, None, "Dispatcher queue")
TECH_JOB_PACKET = command("tech.job_packet", ["technician", "dispatcher"], None, None, "Technician job packet")
OPS_AUTONOMY_STATE = command("ops.autonomy.state", ["dispatcher"], None, None, "Autonomy controls")
OPS_AUTONOMY_REPLAY = command("ops.autonomy.replay", ["dispatcher"], None, None, "Autonomy history of a ticket")
# A customer's message handed over by a control plane; message_receive is its service.
INTAKE_SUBMIT_MESSAGE = command(
    "intake.submit_message", ["dispatcher", "agent"], None, None, "Hand over a customer's message"
)


# The media type of each file format a read may answer in (Tool.file_formats).
FILE_MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv", "json": "application/json"}


@dataclass(frozen=True)
class Tool:
    name: str
    # The Command its service hands the executor (or, for a read, the one declared above).
    command: Command
    handler: Callable[..., tuple[int, Any]]
    description: str
    success_status: int = 200
    # The OpenAPI component describing the success body.
    response: str = "Ticket"
    # Whether the tool accepts a multipart file upload besides its JSON body.
    uploads: bool = False
    # A tool beyond the contract carries its own entry, shaped like the contract's (see `extra`).
    extra_entry: dict | None = None
    # A read that also answers as a file: the formats (pdf, csv, json), each asked for with
    # `Accept` or a `.<format>` route, and the handler that makes the file.
    file_formats: tuple[str, ...] = ()
    file_handler: Callable[..., Any] | None = None
    # Whether the command writes files to storage before its transaction (a rendered document).
    writes_files: bool = False
    # Optional fields a contract tool accepts beyond the contract's own, published in its schema so
    # a client can find them; never required, never changing a contract field (wire-compatible).
    added_properties: dict | None = None

    @cached_property
    def contract_entry(self) -> dict:
        return self.extra_entry or contract_tools()[self.name]

    @property
    def in_contract(self) -> bool:
        return self.extra_entry is None

    @property
    def method(self) -> str:
        return self.contract_entry["http_method"]

    @property
    def route(self) -> str:
        return self.contract_entry["route"]

    @cached_property
    def schema(self) -> dict:
        schema = self.contract_entry["payload_schema"]
        if not self.added_properties:
            return schema
        return {**schema, "properties": {**schema.get("properties", {}), **self.added_properties}}

    # Compiled once per process: building a validator costs more than validating a payload.
    @cached_property
    def validator(self):
        return validator_for(self.schema)

    @cached_property
    def upload_validator(self):
        return validator_for(upload_schema(self.schema))

    @property
    def idempotency_required(self) -> bool:
        return bool(self.contract_entry["idempotency_required"])

    @property
    def needs_ticket(self) -> bool:
        return "{ticketId}" in self.route

    @property
    def function_name(self) -> str:
        return self.name.replace(".", "_")

    @property
    def roles(self) -> frozenset:
        return self.command.roles

    def allows(self, role) -> bool:
        """The contract's roles, strictly: unlike the executor, the API lets no SYSTEM bypass in."""
        return role in self.command.roles


def extra(
    command_: Command,
    handler: Callable[..., tuple[int, Any]],
    description: str,
    *,
    method: str,
    route: str,
    schema: dict,
    idempotency_required: bool = True,
    **options: Any,
) -> Tool:
    """A tool the contract does not have, in the contract's own shape: same routing, auth,
    idempotency and error rules; roles and states come from the service's Command."""
    entry = {
        "tool_name": command_.tool,
        "http_method": method,
        "route": route,
        "allowed_roles": sorted(role.value for role in command_.roles),
        "allowed_from_states": sorted(command_.from_states) if command_.from_states is not None else None,
        "resulting_state": command_.resulting_state,
        "idempotency_required": idempotency_required,
        "payload_schema": schema,
    }
    return Tool(command_.tool, command_, handler, description, extra_entry=entry, **options)


LOCATION_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "required": ["lat", "lng"],
    "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
    },
}

TOOLS: tuple[Tool, ...] = (
    Tool(
        "ticket.create",
        tickets.TICKET_CREATE,
        handlers.ticket_create,
        "Open a new service ticket (state NEW) for a known account and site. Give the customer's "
        "account_id and site_id (UUIDs; the site must belong to the account), a one-line summary of the "
        "problem, and optionally a longer description, the asset at the site and a not-to-exceed amount in "
        "cents. Returns the ticket; triage it next.",
        success_status=201,
    ),
    Tool(
        "ticket.blind_intake",
        intake.BLIND_INTAKE,
        handlers.ticket_blind_intake,
        "Open a ticket straight from an intake conversation you have classified yourself. Give account, site, "
        "summary, incident_type, customer_name, priority (EMERGENCY, URGENT or ROUTINE) and how sure you are "
        "of the caller's identity and of the classification (0-100 each). Both confidences at 85 or more open "
        "it READY_TO_SCHEDULE, otherwise TRIAGED. Refused with DUPLICATE_INTAKE when the same customer already "
        "reported the same incident at the same site within 120 minutes.",
        success_status=201,
    ),
    Tool(
        "ticket.triage",
        tickets.TICKET_TRIAGE,
        handlers.ticket_triage,
        "Set a ticket's priority (EMERGENCY, URGENT, ROUTINE) and incident type (for example DOOR_WONT_LATCH, "
        "CANNOT_SECURE_ENTRY), optionally its not-to-exceed amount, and move it on. workflow_outcome chooses "
        "where it goes: TRIAGED (default), READY_TO_SCHEDULE to queue it for scheduling, or APPROVAL_REQUIRED "
        "to ask an approver first (give approval_reason and, for money, approval_amount_delta_cents). Works "
        "from NEW, NEEDS_INFO or TRIAGED.",
    ),
    Tool(
        "schedule.propose",
        scheduling.SCHEDULE_PROPOSE,
        handlers.schedule_propose,
        "Offer the customer one or more appointment windows for a READY_TO_SCHEDULE ticket. Each option has a "
        "start and end (ISO-8601 with time zone). The ticket moves to SCHEDULE_PROPOSED; confirm one window "
        "with schedule.confirm.",
        response="TicketWithResult",
    ),
    Tool(
        "schedule.confirm",
        scheduling.SCHEDULE_CONFIRM,
        handlers.schedule_confirm,
        "Book one of the proposed windows (start and end exactly as proposed) for a SCHEDULE_PROPOSED ticket. "
        "The ticket becomes SCHEDULED. A window that would double-book the technician is refused.",
    ),
    Tool(
        "assignment.dispatch",
        scheduling.ASSIGNMENT_DISPATCH,
        handlers.assignment_dispatch,
        "Assign a technician (tech_id) and send them: the ticket becomes DISPATCHED and the technician is "
        "notified. Normally from SCHEDULED. From TRIAGED only as an emergency: dispatch_mode "
        "EMERGENCY_BYPASS with a dispatch_rationale and dispatch_confirmation true (otherwise "
        "ASSIGNMENT_BYPASS_DENIED). An inactive or busy technician is refused with TECH_UNAVAILABLE. Pass the "
        "recommendation_snapshot_id when you chose from assignment.recommend.",
    ),
    Tool(
        "assignment.recommend",
        scheduling.ASSIGNMENT_RECOMMEND,
        handlers.assignment_recommend,
        "Rank the technicians who could take this job, best first, with a reason for each: skill for the "
        "service_type (the incident type), region, availability in the window and current load. Optional "
        "recommendation_limit (1-20, default 5) and preferred_window. Changes no state; returns a "
        "recommendation_snapshot_id to quote when dispatching.",
        response="TicketWithResult",
    ),
    Tool(
        "schedule.hold",
        scheduling.SCHEDULE_HOLD,
        handlers.schedule_hold,
        "Put a proposed or scheduled job on hold while the customer confirms: give hold_reason "
        "(CUSTOMER_PENDING, CUSTOMER_UNREACHABLE, CUSTOMER_CONFIRMATION_STALE) and the confirmation_window "
        "(start, end) the customer has to answer in. The ticket becomes PENDING_CUSTOMER_CONFIRMATION and the "
        "schedule is kept in a snapshot; the answer carries the confirmation_id needed to release or roll back.",
        response="TicketWithResult",
    ),
    Tool(
        "schedule.release",
        scheduling.SCHEDULE_RELEASE,
        handlers.schedule_release,
        "The customer confirmed: end the hold (customer_confirmation_id = the hold's confirmation_id) and "
        "return the ticket to exactly the schedule and state it had before the hold.",
        response="TicketWithResult",
    ),
    Tool(
        "schedule.rollback",
        scheduling.SCHEDULE_ROLLBACK,
        handlers.schedule_rollback,
        "Undo a hold (confirmation_id = the hold's confirmation_id, optional reason): the ticket returns to "
        "the state and schedule stored when the hold began.",
        response="TicketWithResult",
    ),
    Tool(
        "tech.check_in",
        scheduling.TECH_CHECK_IN,
        handlers.tech_check_in,
        "The technician has arrived: record the arrival timestamp and optional location. A DISPATCHED ticket "
        "goes to ON_SITE and then IN_PROGRESS in this one call. Technicians may check in only on their own jobs. "
        "An arrival well before the booked visit (DISPATCH_EARLY_CHECK_IN_MINUTES) also needs a `reason` "
        "(text, kept in the audit); without one it is refused with INVALID_REQUEST on field reason.",
        # As loose as the service (null means none; the length is measured trimmed, by the service),
        # so a request that went through before still does.
        added_properties={
            "reason": {
                "type": ["string", "null"],
                "description": (
                    "Why the technician checks in well before the booked visit (kept in the audit; "
                    f"at most {scheduling.CHECK_IN_REASON_MAX} characters)."
                ),
            }
        },
    ),
    Tool(
        "tech.request_change",
        approvals.TECH_REQUEST_CHANGE,
        handlers.tech_request_change,
        "A technician asks for approval before going further: approval_type NTE_INCREASE (with "
        "amount_delta_cents) or PROPOSAL, a reason, and optional evidence_refs. The ticket waits in "
        "APPROVAL_REQUIRED until approval.decide.",
        response="TicketWithResult",
    ),
    Tool(
        "approval.decide",
        approvals.APPROVAL_DECIDE,
        handlers.approval_decide,
        "Decide a pending approval (approval_id) on an APPROVAL_REQUIRED ticket: APPROVED returns the ticket "
        "to the state it came from (work resumes), DENIED sends it back to TRIAGED. Optional notes.",
    ),
    Tool(
        "closeout.add_evidence",
        closeout.EVIDENCE_ADD,
        handlers.closeout_add_evidence,
        "Attach evidence to a ticket: kind (PHOTO, NOTE, SIGNATURE, DOCUMENT, ...), the object-store uri where "
        "it is kept (s3:// or minio://), optional checksum and metadata, and the evidence_key it satisfies "
        "(for example photo_before, signature_or_no_signature_reason), top-level or as metadata.evidence_key. "
        "A file may instead be uploaded as multipart/form-data (field 'file'). Returns the evidence item (201).",
        success_status=201,
        response="Evidence",
        uploads=True,
    ),
    Tool(
        "closeout.candidate",
        closeout.CLOSEOUT_CANDIDATE,
        handlers.closeout_candidate,
        "Propose that an IN_PROGRESS job is complete (automated path). checklist_status maps every checklist "
        "key of the incident template to true; give no_signature_reason when there is no signature. Refused "
        "with CLOSEOUT_REQUIREMENTS_INCOMPLETE (requirement_code, missing_evidence_keys, "
        "missing_checklist_keys say exactly what is missing), and with MANUAL_REVIEW_REQUIRED for high-risk "
        "incident types, which need tech.complete.",
    ),
    Tool(
        "tech.complete",
        closeout.TECH_COMPLETE,
        handlers.tech_complete,
        "Mark an IN_PROGRESS job complete: checklist_status with every required checklist key true, a "
        "SIGNATURE evidence item or a no_signature_reason, and every evidence key the incident template "
        "requires. The ticket goes to COMPLETED_PENDING_VERIFICATION; otherwise 409 "
        "CLOSEOUT_REQUIREMENTS_INCOMPLETE lists what is missing.",
    ),
    Tool(
        "qa.verify",
        closeout.QA_VERIFY,
        handlers.qa_verify,
        "QA review of completed work: timestamp and result PASS (the ticket becomes VERIFIED) or FAIL (refused "
        "with QA_VERIFICATION_FAILED; the notes are kept).",
    ),
    Tool(
        "billing.generate_invoice",
        closeout.BILLING_GENERATE_INVOICE,
        handlers.billing_generate_invoice,
        "Create the invoice draft of a VERIFIED ticket (labor, parts, tax, totals, NTE check); the ticket "
        "becomes INVOICED. No payload needed. Answers the ticket, with the draft under 'invoice'.",
        response="Ticket",
    ),
    Tool(
        "ticket.close",
        closeout.TICKET_CLOSE,
        handlers.ticket_close,
        "Close a VERIFIED or INVOICED ticket: compiles the closeout packet (evidence, checklist, state history, "
        "actors) and makes the evidence immutable. Optional reason.",
        response="TicketWithResult",
    ),
    Tool(
        "ticket.force_close",
        closeout.TICKET_FORCE_CLOSE,
        handlers.ticket_force_close,
        "Close a COMPLETED_PENDING_VERIFICATION ticket without QA, as an audited override: override_code (5+ "
        "characters), override_reason (20+ characters) and the approver_role taking responsibility.",
        response="TicketWithResult",
    ),
    Tool(
        "ticket.cancel",
        tickets.TICKET_CANCEL,
        handlers.ticket_cancel,
        "Cancel an open ticket (any state but CLOSED and CANCELLED) with a reason and optional cancellation_code.",
    ),
    Tool(
        "dispatch.force_hold",
        tickets.DISPATCH_FORCE_HOLD,
        handlers.dispatch_force_hold,
        "Stop a dispatched or running job (DISPATCHED, ON_SITE, IN_PROGRESS) and put it ON_HOLD, with an "
        "optional hold_reason and reason.",
    ),
    Tool(
        "dispatch.force_unassign",
        scheduling.DISPATCH_FORCE_UNASSIGN,
        handlers.dispatch_force_unassign,
        "Take the assigned technician off a job (optional reason and reassign_type); the job returns to "
        "SCHEDULED so someone else can be dispatched.",
    ),
    Tool(
        "reopen_after_verification",
        tickets.REOPEN_AFTER_VERIFICATION,
        handlers.reopen_after_verification,
        "Send VERIFIED or INVOICED work back to IN_PROGRESS because something is not right; give the reason "
        "and optionally the reopen_scope.",
    ),
    Tool(
        "closeout.evidence_exception",
        closeout.EVIDENCE_EXCEPTION,
        handlers.closeout_evidence_exception,
        "Grant an exception for evidence that cannot be provided (exception_reason, optional evidence_refs and "
        "expires_at), recorded in the audit trail. Changes no state.",
        response="TicketWithResult",
    ),
    Tool(
        "dispatch.manual_bypass",
        closeout.DISPATCH_MANUAL_BYPASS,
        handlers.dispatch_manual_bypass,
        "A dispatcher overrides the closeout checks and moves the job to COMPLETED_PENDING_VERIFICATION, with a "
        "bypass_rationale (and optional target_tool) kept in the audit trail.",
    ),
    Tool(
        "ticket.get",
        TICKET_GET,
        handlers.ticket_get,
        "Read one ticket: state, priority, incident type, customer, schedule, assigned technician, NTE and version.",
    ),
    Tool(
        "closeout.list_evidence",
        CLOSEOUT_LIST_EVIDENCE,
        handlers.closeout_list_evidence,
        "List a ticket's evidence items, oldest first, each with its kind, uri, checksum and metadata "
        "(including its evidence_key).",
        response="EvidenceList",
    ),
    Tool(
        "ticket.timeline",
        TICKET_TIMELINE,
        handlers.ticket_timeline,
        "Read a ticket's audit timeline, oldest first: who did what with which tool, request and correlation "
        "ids, state before and after, and the (redacted) payload.",
        response="Timeline",
    ),
    Tool(
        "dispatcher.cockpit",
        DISPATCHER_COCKPIT,
        handlers.dispatcher_cockpit,
        "The dispatcher's queue: open tickets by priority and age with site, technician, SLA clock, and which "
        "actions are allowed now (and why the others are not), plus counts by state, priority and SLA status.",
        response="Object",
    ),
    Tool(
        "tech.job_packet",
        TECH_JOB_PACKET,
        handlers.tech_job_packet,
        "Everything a technician needs on site for one job: site and access, contact, scope and NTE, asset, "
        "required evidence and checklist keys and what is still missing, the latest timeline, and which "
        "actions are allowed now.",
        response="Object",
    ),
    Tool(
        "ops.autonomy.pause",
        closeout.AUTONOMY_PAUSE,
        handlers.ops_autonomy_pause,
        "Stop agents from closing out work: scope_type GLOBAL, INCIDENT (with incident_type) or TICKET (with "
        "ticket_id), and a reason. Agent-role closeout calls are then refused with AUTONOMY_DISABLED until "
        "ops.autonomy.rollback.",
        response="Object",
    ),
    Tool(
        "ops.autonomy.rollback",
        closeout.AUTONOMY_ROLLBACK,
        handlers.ops_autonomy_rollback,
        "Lift an autonomy pause at the same scope (GLOBAL, INCIDENT with incident_type, TICKET with ticket_id). "
        "The pause stays in the history.",
        response="Object",
    ),
    Tool(
        "ops.autonomy.state",
        OPS_AUTONOMY_STATE,
        handlers.ops_autonomy_state,
        "Which autonomy pauses are active, their history, and (with ?ticket_id= or ?incident_type=) the decision "
        "that applies to that ticket or incident type.",
        response="Object",
    ),
    Tool(
        "outbox.replay",
        messaging.OUTBOX_REPLAY,
        handlers.outbox_replay,
        "Re-queue a dead-lettered outbound SMS or email (outbox_id) for delivery with a fresh set of attempts.",
        response="Object",
    ),
    Tool(
        "ops.autonomy.replay",
        OPS_AUTONOMY_REPLAY,
        handlers.ops_autonomy_replay,
        "The autonomy decision for one ticket now, the pauses that apply to it, and the pause/rollback history "
        "of every scope covering it.",
        response="Object",
    ),
)

# Tools beyond the contract, in the same registry and under the same rules.
TOOLS = TOOLS + (
    extra(
        INTAKE_SUBMIT_MESSAGE,
        handlers.intake_submit_message,
        "Hand over one message a customer sent on a channel this system does not host (WhatsApp, web chat, "
        "a call you transcribed), exactly as received: channel (e.g. WHATSAPP, CHAT, SMS, EMAIL), the "
        "provider's message id (a redelivery with the same channel and id is recognised: 200 with duplicate "
        "true), the sender's phone/email/name, subject, body, received_at. It goes through the same intake as "
        "an SMS: sanitized, threaded onto the sender's open ticket or opening a new one, and what is missing "
        "is asked for; it can never schedule, dispatch or close anything. Replies go out by SMS or email when "
        "the channel is SMS or EMAIL (or reply_channel says so); otherwise the answer's replies are yours to "
        "relay to the customer.",
        method="POST",
        route="/intake/messages",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["channel", "provider_message_id", "body"],
            "properties": {
                "channel": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{1,31}$"},
                "provider_message_id": {"type": "string", "minLength": 1, "maxLength": 200},
                "sender_phone": {"type": "string", "maxLength": 40},
                "sender_email": {"type": "string", "maxLength": 254},
                "sender_name": {"type": "string", "maxLength": 200},
                "subject": {"type": "string", "maxLength": 300},
                "body": {"type": "string", "maxLength": 100000},
                "received_at": {"type": "string", "format": "date-time"},
                "reply_channel": {"type": "string", "enum": ["SMS", "EMAIL", "NONE"]},
                "media": {
                    "type": "array",
                    "maxItems": 10,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "url": {"type": "string", "maxLength": 2000},
                            "content_type": {"type": "string", "maxLength": 100},
                            "name": {"type": "string", "maxLength": 200},
                        },
                    },
                },
            },
        },
        success_status=201,
        response="Object",
    ),
    extra(
        scheduling.SCHEDULE_SUGGEST,
        handlers.schedule_suggest,
        "Read-only: the slot engine's best appointment windows for a READY_TO_SCHEDULE, SCHEDULE_PROPOSED or "
        "PENDING_CUSTOMER_CONFIRMATION ticket within horizon_days (default 14), up to limit (default 3). Each window "
        "has tech_id, tech_name, start, end, arrival_window, score, travel_minutes and a plain-language reason; when "
        "none fits, explanation says which rule excluded everyone. A job type that needs a crew or several working "
        "days adds crew (the technicians, lead first; tech_id is the lead) and days (each day's start and end) to "
        "each window. Pass the windows as options to schedule.propose (each keeps its tech_id and crew, which "
        "schedule.confirm books).",
        method="POST",
        route="/tickets/{ticketId}/schedule/suggest",
        idempotency_required=False,
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "horizon_days": {"type": "integer", "minimum": 1, "maximum": 60},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10},
            },
        },
        response="Object",
    ),
    extra(
        day_planner.SCHEDULE_OPTIMIZE_DAY,
        handlers.schedule_optimize_day,
        "Re-plan a whole day's routes (day: YYYY-MM-DD, today or tomorrow; default tomorrow). A dry run by "
        "default: answers the moves (each booking's new technician and start, with a reason such as 'saves 24 min "
        "of driving; same window'), the minutes of driving saved per technician and in total, and status "
        "improved, unchanged or fallback (the solver found nothing better in its time; today's plan stands). "
        "Every customer keeps the arrival window they were told; dispatched, started, held and soon-starting "
        "jobs never move. Send apply true with the preview's moves to apply exactly those (all or none: "
        "PLAN_STALE when a booking changed since), or apply true alone to plan and apply at once. "
        "technician_ids narrows the day to some technicians; include_queue also fits queued jobs (a new "
        "booking the customer is told of).",
        method="POST",
        route="/schedule/optimize-day",
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "day": {"type": "string", "maxLength": 10},
                "apply": {"type": "boolean"},
                "include_queue": {"type": "boolean"},
                "technician_ids": {"type": "array", "maxItems": 500, "items": {"type": "string", "format": "uuid"}},
                "moves": {
                    "type": "array",
                    "maxItems": 2000,
                    "items": {
                        "type": "object",
                        "required": ["ticket_id", "tech_id", "start"],
                        "properties": {
                            "kind": {"type": "string", "enum": ["move", "book"]},
                            "ticket_id": {"type": "string", "format": "uuid"},
                            "ticket_version": {"type": ["integer", "null"]},
                            "appointment_id": {"type": ["string", "null"], "format": "uuid"},
                            "from_tech_id": {"type": ["string", "null"], "format": "uuid"},
                            "from_start": {"type": ["string", "null"], "format": "date-time"},
                            "tech_id": {"type": "string", "format": "uuid"},
                            "start": {"type": "string", "format": "date-time"},
                            "reason": {"type": "string", "maxLength": 300},
                        },
                    },
                },
            },
        },
        response="Object",
    ),
    extra(
        eta.TECH_ACKNOWLEDGE,
        handlers.tech_acknowledge,
        "The assigned technician confirms they saw the dispatch and will take the job. Stops the "
        "unacknowledged-dispatch escalation clock. From DISPATCHED; no state change.",
        method="POST",
        route="/tickets/{ticketId}/tech/acknowledge",
        schema={"type": "object", "additionalProperties": True, "properties": {}},
    ),
    extra(
        eta.TECH_DEPART,
        handlers.tech_depart,
        "The technician sets off for the job: the customer gets an 'on my way' message with the ETA. Give "
        "eta_minutes, or the technician's current location (lat, lng) to estimate it; without either the ETA is "
        "estimated from the previous job or home base. From DISPATCHED; no state change.",
        method="POST",
        route="/tickets/{ticketId}/tech/depart",
        schema={
            "type": "object",
            "additionalProperties": True,
            "properties": {
                "eta_minutes": {"type": "integer", "minimum": 0, "maximum": 720},
                "location": LOCATION_SCHEMA,
            },
        },
    ),
    extra(
        eta.TECH_ETA_UPDATE,
        handlers.tech_eta_update,
        "Update the arrival estimate while driving (eta_minutes, or location lat/lng). When the ETA slips beyond "
        "the configured margin the customer gets one delay notice. From DISPATCHED; no state change.",
        method="POST",
        route="/tickets/{ticketId}/tech/eta",
        schema={
            "type": "object",
            "additionalProperties": True,
            "properties": {
                "eta_minutes": {"type": "integer", "minimum": 0, "maximum": 720},
                "location": LOCATION_SCHEMA,
            },
        },
    ),
    extra(
        scheduling.TECH_PAUSE,
        handlers.tech_pause,
        "The technician stops work on their IN_PROGRESS job for a while (waiting on a part, the customer "
        "away): give the reason. The ticket goes ON_HOLD until tech.resume. Technicians only on their own jobs.",
        method="POST",
        route="/tickets/{ticketId}/tech/pause",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["reason"],
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
        },
    ),
    extra(
        scheduling.TECH_RESUME,
        handlers.tech_resume,
        "The technician takes paused work up again: ON_HOLD back to IN_PROGRESS. A technician may resume only "
        "a pause they made with tech.pause (a hold dispatch put on is refused with HOLD_SET_BY_DISPATCH).",
        method="POST",
        route="/tickets/{ticketId}/tech/resume",
        schema={"type": "object", "additionalProperties": False, "properties": {}},
    ),
    extra(
        closeout.LABOR_ADD,
        handlers.closeout_add_labor,
        "Log time worked on a job: minutes (1-1440), an optional description, when the work started "
        "(worked_at, ISO-8601; default now: it decides the rate class, standard, after-hours or emergency) and, "
        "for the office only, an hourly rate_cents overriding the rate class. A technician's time is their own; a "
        "dispatcher's entry is booked to the assigned technician. The invoice draft is built from these entries. "
        "No state change.",
        method="POST",
        route="/tickets/{ticketId}/closeout/labor",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["minutes"],
            "properties": {
                "minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                "rate_cents": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                "description": {"type": "string", "maxLength": 300},
                "worked_at": {"type": "string", "format": "date-time"},
            },
        },
        success_status=201,
        response="TicketWithResult",
    ),
    extra(
        closeout.LABOR_UPDATE,
        handlers.closeout_update_labor,
        "Correct a labor entry of this ticket (labor_entry_id from closeout.add_labor): new minutes and/or "
        "description. The audit trail keeps each old and new value. An entry of another ticket is "
        "LABOR_ENTRY_NOT_FOUND. No state change.",
        method="POST",
        route="/tickets/{ticketId}/closeout/labor/update",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["labor_entry_id"],
            "properties": {
                "labor_entry_id": {"type": "integer", "minimum": 1, "maximum": 2**53},
                "minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                "description": {"type": "string", "maxLength": 300},
            },
        },
        response="TicketWithResult",
    ),
    extra(
        closeout.PART_ADD,
        handlers.closeout_add_part,
        "Log a part used on a job: a price book sku (its price applies), or a description with unit_cents; "
        "quantity defaults to 1 (up to 10000, two decimals). The invoice draft is built from these. No state "
        "change.",
        method="POST",
        route="/tickets/{ticketId}/closeout/parts",
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sku": {"type": "string", "minLength": 1, "maxLength": 64},
                "description": {"type": "string", "maxLength": 300},
                "quantity": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
                "unit_cents": {"type": "integer", "minimum": 0, "maximum": 100_000_000},
            },
        },
        success_status=201,
        response="TicketWithResult",
    ),
    extra(
        closeout.CHECKLIST_SAVE,
        handlers.closeout_save_checklist,
        "Save checklist answers before completing (ON_SITE, IN_PROGRESS or ON_HOLD): checklist_status maps "
        "checklist keys of the incident template to true or false and is merged over the answers saved "
        "before; an optional no_signature_reason. tech.complete then reads them, and the job packet shows "
        "them. Unknown keys are refused naming them. No state change.",
        method="POST",
        route="/tickets/{ticketId}/closeout/checklist",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["checklist_status"],
            "properties": {
                "checklist_status": {
                    "type": "object",
                    "maxProperties": 100,
                    "propertyNames": {"maxLength": 120},
                    "additionalProperties": {"type": "boolean"},
                },
                "no_signature_reason": {"type": "string", "maxLength": 4000},
            },
        },
        response="TicketWithResult",
    ),
    extra(
        CLOSEOUT_GET_PACKET,
        handlers.closeout_get_packet,
        "Read a job's closeout packet: the newest version (or ?version=N) with its full JSON document under "
        "packet.document, its sha256 (of the canonical JSON), the public verify_url its QR code points to, the PDF's "
        "status, and a summary of every version. Send Accept: application/pdf (or GET .../closeout/packet.pdf) for "
        "the PDF, or GET .../closeout/packet.json for the JSON exactly as hashed. 404 PACKET_NOT_FOUND before any "
        "packet was issued.",
        method="GET",
        route="/tickets/{ticketId}/closeout/packet",
        idempotency_required=False,
        schema={"type": "object", "additionalProperties": True, "properties": {}},
        response="Object",
        file_formats=("pdf", "json"),
        file_handler=handlers.closeout_packet_file,
    ),
    extra(
        closeout.RENDER_PACKET,
        handlers.closeout_render_packet,
        "Issue a new version of the job's closeout packet now, from COMPLETED_PENDING_VERIFICATION, VERIFIED, "
        "INVOICED or CLOSED (for example after a reopen and new work). Optional reason. Older versions stay. The "
        "JSON and hash are ready at once; the PDF is rendered in the background (closeout.get_packet shows its "
        "status). Changes no state.",
        method="POST",
        route="/tickets/{ticketId}/closeout/packet/render",
        writes_files=True,
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"reason": {"type": "string", "maxLength": 250}},
        },
        response="TicketWithResult",
    ),
    extra(
        BILLING_GET_INVOICE,
        handlers.billing_get_invoice,
        "Read a job's invoice: the current version (draft or approved; ?version=N for another) with its lines, "
        "taxes, totals, NTE check and approval references, and a summary of every version. Send Accept: "
        "application/pdf or text/csv (or GET .../invoice.pdf, .../invoice.csv) for the customer's PDF or the "
        "accounting CSV.",
        method="GET",
        route="/tickets/{ticketId}/invoice",
        idempotency_required=False,
        schema={"type": "object", "additionalProperties": True, "properties": {}},
        response="Object",
        file_formats=("pdf", "csv"),
        file_handler=handlers.billing_invoice_file,
    ),
    extra(
        closeout.BILLING_EDIT_INVOICE,
        handlers.billing_edit_invoice,
        "Finance edits the invoice draft: its lines become exactly the lines given (kind LABOR, PART or FEE, "
        "description, quantity, unit_cents, taxable, optional item_code) and totals, tax and the NTE check are "
        "recomputed. Give invoice_id to be sure you edit the version you read. Refused with INVOICE_NOT_DRAFT "
        "once approved.",
        method="POST",
        route="/tickets/{ticketId}/invoice/lines",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["lines"],
            "properties": {
                "invoice_id": {"type": "string", "format": "uuid"},
                "lines": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 200,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["kind", "description", "unit_cents"],
                        "properties": {
                            "kind": {"type": "string", "enum": ["LABOR", "PART", "FEE"]},
                            "item_code": {"type": "string", "maxLength": 64},
                            "description": {"type": "string", "minLength": 1, "maxLength": 300},
                            "quantity": {"type": ["number", "string"]},
                            "unit_cents": {"type": "integer", "minimum": 0},
                            "taxable": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        response="Ticket",
    ),
    extra(
        closeout.BILLING_APPROVE_INVOICE,
        handlers.billing_approve_invoice,
        "Finance approves the invoice draft: it never changes again, its PDF is stored, a closeout packet version "
        "is issued, and the customer is emailed both. An invoice over the NTE needs nte_override_reason. Optional "
        "invoice_id guards against approving a version you did not read.",
        method="POST",
        route="/tickets/{ticketId}/invoice/approve",
        writes_files=True,
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "invoice_id": {"type": "string", "format": "uuid"},
                "nte_override_reason": {"type": "string", "maxLength": 500},
            },
        },
        response="Ticket",
    ),
    extra(
        closeout.BILLING_REVISE_INVOICE,
        handlers.billing_revise_invoice,
        "Correct an approved invoice: a new draft version with the same lines supersedes it (the approved one is "
        "kept, marked superseded). Give the reason; then edit and approve the new version.",
        method="POST",
        route="/tickets/{ticketId}/invoice/revise",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["reason"],
            "properties": {
                "invoice_id": {"type": "string", "format": "uuid"},
                "reason": {"type": "string", "minLength": 1, "maxLength": 500},
            },
        },
        response="Ticket",
    ),
)

TOOLS_BY_NAME: dict[str, Tool] = {tool.name: tool for tool in TOOLS}


def tools_by_route() -> dict[str, dict[str, Tool]]:
    """{route: {METHOD: tool}} in registry order (one route may serve two methods)."""
    routes: dict[str, dict[str, Tool]] = {}
    for tool in TOOLS:
        routes.setdefault(tool.route, {})[tool.method] = tool
    return routes


def tools_for_role(role) -> list[Tool]:
    return [tool for tool in TOOLS if tool.allows(role)]
