"""What each audited action means in people's words ("checked in", "approved the invoice"), for
every face that shows a ticket's history to a person: the technician's job page, the closeout
packet, the back office. Tool names stay in the audit trail; people read these."""

from __future__ import annotations

PHRASES = {
    "ticket.create": "opened the job",
    "ticket.blind_intake": "opened the job",
    "intake.message_received": "opened the job from a customer's message",
    "ticket.triage": "triaged the job",
    "schedule.propose": "offered appointment times",
    "schedule.confirm": "booked the appointment",
    "schedule.hold": "put the appointment on hold for the customer",
    "schedule.release": "confirmed the appointment with the customer",
    "schedule.rollback": "undid the appointment hold",
    "assignment.dispatch": "dispatched the job",
    "dispatch.force_unassign": "took the technician off the job",
    "tech.acknowledge": "acknowledged the job",
    "tech.depart": "set off",
    "tech.eta_update": "updated the arrival time",
    "tech.check_in": "checked in",
    "tech.pause": "paused the job",
    "tech.resume": "resumed work",
    "tech.request_change": "asked for approval",
    "approval.decide": "decided the approval",
    "closeout.add_evidence": "added evidence",
    "closeout.save_checklist": "updated the checklist",
    "closeout.add_labor": "logged time",
    "closeout.update_labor": "corrected logged time",
    "closeout.add_part": "added a part",
    "closeout.evidence_exception": "waived required evidence",
    "closeout.candidate": "completed the job",
    "tech.complete": "completed the job",
    "dispatch.manual_bypass": "marked the job complete without the evidence checks",
    "dispatch.force_hold": "put the job on hold",
    "ticket.resume": "took the job off hold",
    "qa.verify": "verified the work",
    "reopen_after_verification": "reopened the job",
    "billing.generate_invoice": "drafted the invoice",
    "billing.edit_invoice": "edited the invoice draft",
    "billing.approve_invoice": "approved the invoice",
    "billing.revise_invoice": "started a corrected invoice",
    "closeout.render_packet": "issued a closeout packet",
    "closeout.packet_compiled": "issued the closeout packet",
    "ticket.close": "closed the job",
    "ticket.force_close": "closed the job without QA",
    "ticket.cancel": "cancelled the job",
}
EVIDENCE_PHRASES = {"PHOTO": "added a photo", "NOTE": "added a note", "SIGNATURE": "added the customer's signature"}


def event_phrase(tool_name: str, payload: dict | None = None) -> str:
    """What an audit event of this tool says a person did."""
    if tool_name == "closeout.add_evidence":
        return EVIDENCE_PHRASES.get((payload or {}).get("evidence_kind"), PHRASES[tool_name])
    if tool_name == "qa.verify" and (payload or {}).get("result") == "FAIL":
        return "sent the work back from QA"
    return PHRASES.get(tool_name, tool_name.replace(".", " ").replace("_", " "))
