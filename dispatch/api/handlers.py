"""One handler per tool: map the validated payload to ONE service or selector call, render the answer.

Every handler has the signature `(payload, actor, ticket_id, request) -> (status, body)`. The
payload has already passed the contract's JSON Schema; values go to the service as sent
(timestamps as ISO strings), because the service is the one place that interprets them and
checks role, scope and from-state again through the executor.
"""

from __future__ import annotations

from typing import Any

from dispatch.closeout import documents_read as documents
from dispatch.closeout import selectors as closeout_reads
from dispatch.closeout import services as closeout
from dispatch.closeout.packets import evidence_item, invoice_serialize
from dispatch.common.actors import Actor
from dispatch.intake import services as intake
from dispatch.messaging import services as messaging
from dispatch.readmodels import cockpit, job_packet
from dispatch.scheduling import day_planner, eta
from dispatch.scheduling import services as scheduling
from dispatch.scheduling.replies import proposal_reply_apply
from dispatch.tickets import approvals
from dispatch.tickets import selectors as ticket_reads
from dispatch.tickets import services as tickets

from .errors import error_body, request_id_of
from .payloads import is_multipart

Answer = tuple[int, Any]


def _ticket(ticket) -> dict:
    return ticket_reads.ticket_detail(ticket)


def _ticket_with(outcome, **extra) -> dict:
    """`{"ticket": ..., **extra}` for tools whose answer is more than the ticket."""
    return {"ticket": _ticket(outcome.ticket), **extra}


def _result_dict(result) -> dict:
    return dict(result) if isinstance(result, dict) else {}


def _readable_ticket(actor: Actor, ticket_id):
    return ticket_reads.ticket_get_for_actor(actor=actor, ticket_id=ticket_id)


def _registry_tools():
    # The read models offer "allowed actions" from the registry, which in turn names these handlers.
    from .registry import TOOLS

    return TOOLS


# --- tickets -------------------------------------------------------------------------------


def ticket_create(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = tickets.ticket_create(
        actor=actor,
        account_id=payload["account_id"],
        site_id=payload["site_id"],
        summary=payload["summary"],
        description=payload.get("description", ""),
        asset_id=payload.get("asset_id"),
        nte_cents=payload.get("nte_cents"),
        request=payload,
    )
    return 201, _ticket(outcome.ticket)


def ticket_blind_intake(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = intake.ticket_blind_intake(
        actor=actor,
        account_id=payload["account_id"],
        site_id=payload["site_id"],
        summary=payload["summary"],
        incident_type=payload["incident_type"],
        customer_name=payload["customer_name"],
        priority=payload["priority"],
        identity_confidence=payload["identity_confidence"],
        classification_confidence=payload["classification_confidence"],
        contact_phone=payload.get("contact_phone"),
        contact_email=payload.get("contact_email"),
        description=payload.get("description", ""),
        nte_cents=payload.get("nte_cents"),
        sop_handoff_acknowledged=payload.get("sop_handoff_acknowledged"),
        sop_handoff_prompt=payload.get("sop_handoff_prompt"),
        request=payload,
    )
    return 201, {**_ticket(outcome.ticket), **(outcome.result or {})}


def _triage_outcome(payload: dict) -> str:
    # The contract lets a client name the outcome, or set the older boolean flags.
    if payload.get("workflow_outcome"):
        return payload["workflow_outcome"]
    if payload.get("requires_approval"):
        return "APPROVAL_REQUIRED"
    if payload.get("ready_to_schedule"):
        return "READY_TO_SCHEDULE"
    return "TRIAGED"


def ticket_triage(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    # intake_triage is ticket_triage plus the blind-intake gate: a ticket opened by blind intake
    # goes READY_TO_SCHEDULE only when its confidences allow (LOW_*_CONFIDENCE otherwise).
    outcome = intake.intake_triage(
        actor=actor,
        ticket_id=ticket_id,
        priority=payload["priority"],
        incident_type=payload["incident_type"],
        nte_cents=payload.get("nte_cents"),
        outcome=_triage_outcome(payload),
        approval_reason=payload.get("approval_reason", ""),
        approval_amount_delta_cents=payload.get("approval_amount_delta_cents"),
        sop_handoff_acknowledged=payload.get("sop_handoff_acknowledged"),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def ticket_get(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, _ticket(_readable_ticket(actor, ticket_id))


def ticket_timeline(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, ticket_reads.ticket_timeline(_readable_ticket(actor, ticket_id))


def ticket_cancel(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = tickets.ticket_cancel(
        actor=actor,
        ticket_id=ticket_id,
        reason=payload["reason"],
        cancellation_code=payload.get("cancellation_code", ""),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def dispatch_force_hold(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = tickets.ticket_force_hold(
        actor=actor,
        ticket_id=ticket_id,
        reason=payload.get("reason", ""),
        hold_reason=payload.get("hold_reason", ""),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def reopen_after_verification(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = tickets.ticket_reopen(
        actor=actor,
        ticket_id=ticket_id,
        reason=payload["reason"],
        reopen_scope=payload.get("reopen_scope", ""),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


# --- scheduling and assignment -----------------------------------------------------------


def schedule_propose(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.schedule_propose(actor=actor, ticket_id=ticket_id, options=payload["options"], request=payload)
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def schedule_confirm(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.schedule_confirm(
        actor=actor,
        ticket_id=ticket_id,
        start=payload["start"],
        end=payload["end"],
        tech_id=payload.get("tech_id"),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def schedule_hold(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.schedule_hold(
        actor=actor,
        ticket_id=ticket_id,
        hold_reason=payload["hold_reason"],
        confirmation_window=payload["confirmation_window"],
        request=payload,
    )
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def schedule_release(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.schedule_release(
        actor=actor, ticket_id=ticket_id, customer_confirmation_id=payload["customer_confirmation_id"], request=payload
    )
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def schedule_rollback(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.schedule_rollback(
        actor=actor,
        ticket_id=ticket_id,
        confirmation_id=payload["confirmation_id"],
        reason=payload.get("reason", ""),
        request=payload,
    )
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def assignment_recommend(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.assignment_recommend(
        actor=actor,
        ticket_id=ticket_id,
        service_type=payload["service_type"],
        limit=payload.get("recommendation_limit"),
        preferred_window=payload.get("preferred_window"),
        request=payload,
    )
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def assignment_dispatch(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.assignment_dispatch(
        actor=actor,
        ticket_id=ticket_id,
        tech_id=payload["tech_id"],
        dispatch_mode=payload.get("dispatch_mode", "STANDARD"),
        dispatch_rationale=payload.get("dispatch_rationale", ""),
        dispatch_confirmation=payload.get("dispatch_confirmation", False),
        recommendation_snapshot_id=payload.get("recommendation_snapshot_id"),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def dispatch_force_unassign(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.dispatch_force_unassign(
        actor=actor,
        ticket_id=ticket_id,
        reason=payload.get("reason", ""),
        reassign_type=payload.get("reassign_type", ""),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def tech_check_in(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.tech_check_in(
        actor=actor,
        ticket_id=ticket_id,
        timestamp=payload["timestamp"],
        location=payload.get("location"),
        reason=payload.get("reason"),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


# --- approvals -----------------------------------------------------------------------------


def tech_request_change(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = approvals.change_request(
        actor=actor,
        ticket_id=ticket_id,
        approval_type=payload["approval_type"],
        reason=payload["reason"],
        amount_delta_cents=payload.get("amount_delta_cents"),
        evidence_refs=payload.get("evidence_refs"),
        request=payload,
    )
    return 200, _ticket_with(outcome, approval=_approval(outcome.result))


def approval_decide(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = approvals.approval_decide(
        actor=actor,
        ticket_id=ticket_id,
        approval_id=payload["approval_id"],
        decision=payload["decision"],
        notes=payload.get("notes", ""),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


def _approval(approval) -> dict:
    return {
        "id": str(approval.id),
        "status": approval.status,
        "approval_type": approval.kind,
        "amount_delta_cents": approval.amount_cents,
        "reason": approval.reason,
        "return_state": approval.return_state,
        "requested_at": approval.created_at,
    }


# --- closeout -----------------------------------------------------------------------------


def closeout_add_evidence(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    # Only a multipart body carries a file; touching FILES on a JSON body would re-parse it.
    upload = request.FILES.get("file") if is_multipart(request) else None
    outcome = closeout.evidence_add(
        actor=actor,
        ticket_id=ticket_id,
        kind=payload["kind"],
        uri=payload.get("uri"),
        upload=upload,
        evidence_key=payload.get("evidence_key"),
        checksum=payload.get("checksum"),
        metadata=payload.get("metadata"),
        # Beyond the contract's fields (its schema lets them through): a note's own text.
        text=payload.get("text"),
        request=payload,
    )
    return 201, evidence_item(outcome.result)


def closeout_list_evidence(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, closeout_reads.evidence_list(_readable_ticket(actor, ticket_id))


def _completion_kwargs(payload: dict) -> dict:
    return {
        "checklist_status": payload["checklist_status"],
        "no_signature_reason": payload.get("no_signature_reason"),
        "evidence_refs": payload.get("evidence_refs"),
        "request": payload,
    }


def tech_complete(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.tech_complete(actor=actor, ticket_id=ticket_id, **_completion_kwargs(payload))
    return 200, _ticket(outcome.ticket)


def closeout_candidate(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.closeout_candidate(actor=actor, ticket_id=ticket_id, **_completion_kwargs(payload))
    return 200, _ticket(outcome.ticket)


def qa_verify(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    try:
        outcome = closeout.qa_verify(
            actor=actor,
            ticket_id=ticket_id,
            timestamp=payload["timestamp"],
            result=payload["result"],
            notes=payload.get("notes", ""),
            request=payload,
        )
    except closeout.QaVerificationFailed as failed:
        # A FAIL is a verdict QA recorded, not a refusal: answering (rather than raising) lets
        # the transaction commit the review and its audit event, and a retry with the same key
        # replays this answer instead of recording a second FAIL.
        return failed.status, error_body(failed, request_id_of(request))
    return 200, _ticket(outcome.ticket)


def billing_generate_invoice(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.invoice_generate(actor=actor, ticket_id=ticket_id, request=payload)
    written = outcome.result
    # The contract answers the ticket itself; the invoice rides along as one more key.
    return 200, {**_ticket(outcome.ticket), "invoice": invoice_serialize(written.invoice, lines=written.lines)}


def _packet(closure) -> dict:
    """The close's packet as the caller can know it at once: its id; the worker compiles it
    (hash included) right after the close commits."""
    return {
        "id": str(closure.packet_id),
        "artifact_type": "closeout_packet",
        "artifact_name": f"closeout-{closure.ticket_id}.json",
        "status": "COMPILING",
        "forced": closure.forced,
    }


def ticket_close(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.ticket_close(
        actor=actor,
        ticket_id=ticket_id,
        reason=payload.get("reason", ""),
        closeout_override_code=payload.get("closeout_override_code", ""),
        request=payload,
    )
    return 200, _ticket_with(outcome, closeout_packet=_packet(outcome.result))


def ticket_force_close(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.ticket_force_close(
        actor=actor,
        ticket_id=ticket_id,
        override_code=payload["override_code"],
        override_reason=payload["override_reason"],
        approver_role=payload["approver_role"],
        request=payload,
    )
    return 200, _ticket_with(outcome, closeout_packet=_packet(outcome.result))


def closeout_evidence_exception(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.evidence_exception_grant(
        actor=actor,
        ticket_id=ticket_id,
        exception_reason=payload["exception_reason"],
        evidence_refs=payload.get("evidence_refs"),
        expires_at=payload.get("expires_at"),
        request=payload,
    )
    exception = outcome.result
    return 200, _ticket_with(
        outcome,
        evidence_exception={
            "id": str(exception.id),
            "reason": exception.reason,
            "evidence_refs": exception.evidence_refs,
            "expires_at": exception.expires_at,
            "granted_by": exception.granted_by,
            "created_at": exception.created_at,
        },
    )


def dispatch_manual_bypass(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.dispatch_manual_bypass(
        actor=actor,
        ticket_id=ticket_id,
        bypass_rationale=payload["bypass_rationale"],
        target_tool=payload.get("target_tool", ""),
        request=payload,
    )
    return 200, _ticket(outcome.ticket)


# --- operations -----------------------------------------------------------------------------


def _autonomy_kwargs(payload: dict) -> dict:
    return {
        "scope_type": payload.get("scope_type", "GLOBAL"),
        "incident_type": payload.get("incident_type"),
        "ticket_id": payload.get("ticket_id"),
        "reason": payload.get("reason", ""),
        "request": payload,
    }


def ops_autonomy_pause(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, closeout.autonomy_pause(actor=actor, **_autonomy_kwargs(payload)).as_dict()


def ops_autonomy_rollback(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, closeout.autonomy_rollback(actor=actor, **_autonomy_kwargs(payload)).as_dict()


def ops_autonomy_state(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    query_ticket = request.query_params.get("ticket_id", "").strip() or None
    incident_type = request.query_params.get("incident_type", "").strip() or None
    if query_ticket is not None:
        # Naming a ticket reads it: the same existence and scope checks as any ticket read.
        query_ticket = _readable_ticket(actor, query_ticket).id
    return 200, closeout_reads.autonomy_state(ticket_id=query_ticket, incident_type=incident_type)


def ops_autonomy_replay(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, closeout_reads.autonomy_replay(ticket_id, actor=actor)


def outbox_replay(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    message = messaging.outbox_replay(actor=actor, outbox_id=payload["outbox_id"], request=payload)
    return 200, {
        "id": str(message.id),
        "channel": message.channel,
        "recipient": message.recipient,
        "template": message.template or None,
        "ticket_id": str(message.ticket_id) if message.ticket_id else None,
        "status": message.status,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
    }


# --- the faces' read models ------------------------------------------------------------------


COCKPIT_LIST_FILTERS = ("state", "priority", "sla_status", "account_id", "site_id", "assigned_tech_id", "incident_type")


def dispatcher_cockpit(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    query = request.query_params
    filters = {name: _list_param(query, name) for name in COCKPIT_LIST_FILTERS}
    return 200, cockpit.dispatcher_cockpit(
        actor=actor,
        commands=_registry_tools(),
        sort=query.get("sort") or "priority",
        limit=query.get("limit"),
        offset=query.get("offset"),
        cursor=query.get("cursor"),
        ticket_id=query.get("ticket_id") or None,
        **filters,
    )


def _list_param(query, name: str) -> list[str] | None:
    # Filters may repeat (?state=A&state=B) or be comma lists (?state=A,B).
    values = [part.strip() for value in query.getlist(name) for part in value.split(",") if part.strip()]
    return values or None


def tech_job_packet(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, job_packet.tech_job_packet(
        actor=actor, ticket=_readable_ticket(actor, ticket_id), commands=_registry_tools()
    )


# --- tools beyond the contract -------------------------------------------------------------


def schedule_suggest(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, scheduling.schedule_suggest(
        actor=actor,
        ticket_id=ticket_id,
        horizon_days=payload.get("horizon_days", scheduling.engine.DEFAULT_HORIZON_DAYS),
        limit=payload.get("limit", scheduling.engine.DEFAULT_LIMIT),
    )


def tech_acknowledge(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = eta.dispatch_acknowledge(actor=actor, ticket_id=ticket_id, request=payload)
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def tech_depart(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = eta.tech_depart(
        actor=actor,
        ticket_id=ticket_id,
        location=payload.get("location"),
        eta_minutes=payload.get("eta_minutes"),
        request=payload,
    )
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def tech_eta_update(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = eta.tech_eta_update(
        actor=actor,
        ticket_id=ticket_id,
        location=payload.get("location"),
        eta_minutes=payload.get("eta_minutes"),
        request=payload,
    )
    return 200, _ticket_with(outcome, **_result_dict(outcome.result))


def _labor_entry(entry) -> dict:
    return {
        "id": entry.id,
        "technician_id": str(entry.technician_id) if entry.technician_id else None,
        "minutes": entry.minutes,
        "rate_cents": entry.rate_cents,
        "description": entry.description,
        "worked_at": entry.worked_at,
        "created_by": entry.created_by,
        "created_at": entry.created_at,
    }


def closeout_add_labor(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.labor_add(
        actor=actor,
        ticket_id=ticket_id,
        minutes=payload["minutes"],
        rate_cents=payload.get("rate_cents"),
        description=payload.get("description", ""),
        worked_at=payload.get("worked_at"),
        request=payload,
    )
    return 201, _ticket_with(outcome, labor_entry=_labor_entry(outcome.result))


def closeout_update_labor(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.labor_update(
        actor=actor,
        ticket_id=ticket_id,
        labor_entry_id=payload["labor_entry_id"],
        minutes=payload.get("minutes"),
        description=payload.get("description"),
        request=payload,
    )
    return 200, _ticket_with(
        outcome, labor_entry=_labor_entry(outcome.result), changes=outcome.event.payload.get("changes", {})
    )


def closeout_add_part(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.part_add(
        actor=actor,
        ticket_id=ticket_id,
        quantity=payload.get("quantity", 1),
        sku=payload.get("sku"),
        description=payload.get("description", ""),
        unit_cents=payload.get("unit_cents"),
        request=payload,
    )
    usage = outcome.result
    return 201, _ticket_with(
        outcome,
        part_usage={
            "id": usage.id,
            "sku": usage.price_book_item.sku if usage.price_book_item_id else None,
            "description": usage.description,
            "quantity": str(usage.quantity),
            "unit_cents": usage.unit_cents,
            "created_by": usage.created_by,
            "created_at": usage.created_at,
        },
    )


def closeout_save_checklist(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.checklist_save(
        actor=actor,
        ticket_id=ticket_id,
        checklist_status=payload["checklist_status"],
        no_signature_reason=payload.get("no_signature_reason"),
        request=payload,
    )
    saved = outcome.result
    return 200, _ticket_with(
        outcome,
        checklist={
            "id": str(saved.id),
            "checklist_status": saved.checklist_status,
            "no_signature_reason": saved.no_signature_reason or None,
            "closeout_gate": saved.gate,
        },
    )


def tech_pause(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.tech_pause(actor=actor, ticket_id=ticket_id, reason=payload["reason"], request=payload)
    return 200, _ticket(outcome.ticket)


def tech_resume(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = scheduling.tech_resume(actor=actor, ticket_id=ticket_id, request=payload)
    return 200, _ticket(outcome.ticket)


# --- intake from a channel this system does not host -----------------------------------------

# Channels whose replies we send ourselves; on any other the caller relays our replies.
REPLYABLE_CHANNELS = frozenset({"SMS", "EMAIL"})


def schedule_optimize_day(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return 200, day_planner.schedule_optimize_day(
        actor=actor,
        day=payload.get("day"),
        apply=bool(payload.get("apply", False)),
        technician_ids=payload.get("technician_ids"),
        include_queue=bool(payload.get("include_queue", False)),
        moves=payload.get("moves"),
    )


def intake_submit_message(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    # Stored as channel AGENT with the id namespaced by its source channel, so a hand-over can
    # neither collide with nor pre-empt the ids Twilio and Mailgun deliver to our own webhooks.
    source = payload["channel"].strip().upper()
    reply = payload.get("reply_channel") or (source if source in REPLYABLE_CHANNELS else "NONE")
    result = intake.message_receive(
        channel="AGENT",
        provider_message_id=f"{source}:{payload['provider_message_id']}",
        sender_phone=payload.get("sender_phone", ""),
        sender_email=payload.get("sender_email", ""),
        sender_name=payload.get("sender_name", ""),
        subject=payload.get("subject", ""),
        body=payload["body"],
        media=payload.get("media", []),
        raw=payload,
        actor=actor,
        extra={
            "source_channel": source,
            "reply_channel": "" if reply == "NONE" else reply,
            "received_at": payload.get("received_at", ""),
        },
    )
    proposal_reply_apply(result=result)
    return (200 if result.duplicate else 201), {
        "message_id": str(result.message.id),
        "duplicate": result.duplicate,
        "created_ticket": result.created_ticket,
        "ticket": _ticket(result.ticket) if result.ticket is not None else None,
        "asked": list(result.asked),
        "reply_option": result.reply_option,
        "flagged": result.flagged,
        "replies": list(result.replies),
    }


# --- closeout documents ----------------------------------------------------------------------


def closeout_get_packet(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    ticket = _readable_ticket(actor, ticket_id)
    return 200, documents.packet_read(ticket, request.query_params.get("version"))


def closeout_packet_file(fmt: str, actor: Actor, ticket_id, request) -> documents.Document:
    """The packet version as a file: its PDF, or its JSON exactly as hashed."""
    ticket = _readable_ticket(actor, ticket_id)
    row = documents.packet_get(ticket, request.GET.get("version"))
    return documents.packet_pdf(row) if fmt == "pdf" else documents.packet_json(row)


def closeout_render_packet(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    outcome = closeout.packet_render(
        actor=actor, ticket_id=ticket_id, reason=payload.get("reason", ""), request=payload
    )
    return 200, _ticket_with(outcome, closeout_packet=documents.packet_summary(outcome.result))


def billing_get_invoice(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    ticket = _readable_ticket(actor, ticket_id)
    return 200, documents.invoice_read(ticket, request.query_params.get("version"))


def billing_invoice_file(fmt: str, actor: Actor, ticket_id, request) -> documents.Document:
    ticket = _readable_ticket(actor, ticket_id)
    invoice = documents.invoice_get(ticket, request.GET.get("version"))
    return documents.invoice_pdf(invoice) if fmt == "pdf" else documents.invoice_csv_document(invoice)


def _invoice_answer(outcome) -> Answer:
    written = outcome.result
    return 200, {**_ticket(outcome.ticket), "invoice": invoice_serialize(written.invoice, lines=written.lines)}


def billing_edit_invoice(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return _invoice_answer(
        closeout.invoice_lines_replace(
            actor=actor,
            ticket_id=ticket_id,
            lines=payload["lines"],
            invoice_id=payload.get("invoice_id"),
            request=payload,
        )
    )


def billing_approve_invoice(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return _invoice_answer(
        closeout.invoice_approve(
            actor=actor,
            ticket_id=ticket_id,
            invoice_id=payload.get("invoice_id"),
            nte_override_reason=payload.get("nte_override_reason", ""),
            request=payload,
        )
    )


def billing_revise_invoice(payload: dict, actor: Actor, ticket_id, request) -> Answer:
    return _invoice_answer(
        closeout.invoice_revise(
            actor=actor,
            ticket_id=ticket_id,
            reason=payload["reason"],
            invoice_id=payload.get("invoice_id"),
            request=payload,
        )
    )
