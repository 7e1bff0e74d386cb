"""Closeout's writes, one module per concern:

- `evidence`: evidence items and the exceptions that waive required evidence;
- `completion`: checklist answers saved on the way, completion behind the evidence gate, the
  dispatcher's manual bypass, QA;
- `invoicing`: labor (logged and corrected), parts and the invoice draft;
- `invoice_review`: finance's review of the draft (edit, approve, correct by a new version);
- `closing`: close and force close, and the worker that compiles the closeout packet;
- `packet_versions`: the packet's versions (compiled, stored, rendered to PDF) and re-renders;
- `autonomy`: the pauses that stop agents' closeout actions.

Every action on a ticket runs in `ticket_change` with its Command (the contract's tool name,
roles and from-states); autonomy pauses change no ticket and are recorded with `audit_only`.
The names below are the ones the faces (toolset, admin, tasks, demo) call.
"""

from .autonomy import (
    AUTONOMY_PAUSE,
    AUTONOMY_ROLLBACK,
    AutonomyChange,
    autonomy_guard,
    autonomy_pause,
    autonomy_rollback,
)
from .closing import (
    CLOSE_TOOLS,
    PACKET_COMPILED,
    TICKET_CLOSE,
    TICKET_FORCE_CLOSE,
    closeout_packet_build,
    closeout_packets_sweep,
    invoice_draft_exists,
    packet_build_schedule,
    ticket_close,
    ticket_force_close,
)
from .completion import (
    CHECKLIST_SAVE,
    CLOSEOUT_CANDIDATE,
    DISPATCH_MANUAL_BYPASS,
    QA_VERIFY,
    TECH_COMPLETE,
    QaVerificationFailed,
    checklist_save,
    closeout_candidate,
    dispatch_manual_bypass,
    manual_bypass_refusal,
    qa_verify,
    qa_verify_refusal,
    tech_complete,
)
from .evidence import (
    EVIDENCE_ADD,
    EVIDENCE_EXCEPTION,
    evidence_add,
    evidence_closed_refusal,
    evidence_exception_grant,
    evidence_kind_normalize,
    evidence_uploads_add,
)
from .invoice_review import (
    BILLING_APPROVE_INVOICE,
    BILLING_EDIT_INVOICE,
    BILLING_REVISE_INVOICE,
    invoice_approve,
    invoice_lines_replace,
    invoice_revise,
)
from .invoicing import (
    BILLING_GENERATE_INVOICE,
    LABOR_ADD,
    LABOR_UPDATE,
    PART_ADD,
    InvoiceWritten,
    invoice_current,
    invoice_generate,
    labor_add,
    labor_update,
    part_add,
)
from .packet_versions import (
    RENDER_PACKET,
    packet_pdf_build,
    packet_pdfs_sweep,
    packet_render,
    packet_verify_url,
    storage_read,
)

__all__ = [
    "AUTONOMY_PAUSE",
    "AUTONOMY_ROLLBACK",
    "BILLING_APPROVE_INVOICE",
    "BILLING_EDIT_INVOICE",
    "BILLING_GENERATE_INVOICE",
    "BILLING_REVISE_INVOICE",
    "CHECKLIST_SAVE",
    "CLOSEOUT_CANDIDATE",
    "CLOSE_TOOLS",
    "DISPATCH_MANUAL_BYPASS",
    "EVIDENCE_ADD",
    "EVIDENCE_EXCEPTION",
    "LABOR_ADD",
    "LABOR_UPDATE",
    "PACKET_COMPILED",
    "PART_ADD",
    "QA_VERIFY",
    "RENDER_PACKET",
    "TECH_COMPLETE",
    "TICKET_CLOSE",
    "TICKET_FORCE_CLOSE",
    "AutonomyChange",
    "InvoiceWritten",
    "QaVerificationFailed",
    "autonomy_guard",
    "autonomy_pause",
    "autonomy_rollback",
    "checklist_save",
    "closeout_candidate",
    "closeout_packet_build",
    "closeout_packets_sweep",
    "dispatch_manual_bypass",
    "evidence_add",
    "evidence_closed_refusal",
    "evidence_exception_grant",
    "evidence_kind_normalize",
    "evidence_uploads_add",
    "invoice_approve",
    "invoice_current",
    "invoice_draft_exists",
    "invoice_generate",
    "invoice_lines_replace",
    "invoice_revise",
    "labor_add",
    "labor_update",
    "manual_bypass_refusal",
    "packet_build_schedule",
    "packet_pdf_build",
    "packet_pdfs_sweep",
    "packet_render",
    "packet_verify_url",
    "part_add",
    "qa_verify",
    "qa_verify_refusal",
    "storage_read",
    "tech_complete",
    "ticket_close",
    "ticket_force_close",
]
