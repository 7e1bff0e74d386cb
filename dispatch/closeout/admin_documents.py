"""Closeout documents in the back office: the versions of a job's packet and of its invoice.
Imported by dispatch/closeout/admin.py.

- The ticket page's "Closeout documents" section (registered with the ticket page): every packet
  version with its hash, PDF status, files and public verification link, and the "Issue packet"
  button; the current invoice with its totals and files, and the versions it replaced.
- The invoice page, where finance reviews a draft: edit its lines, approve it, or correct an
  approved one by a new version. Each is a form whose POST calls one service
  (invoice_lines_replace, invoice_approve, invoice_revise), which checks the role and the
  ticket's state again and writes the audit event; no ModelAdmin save ever writes an invoice.
- The packet and invoice lists, read-only, with their downloads and a CSV export.

Downloads are staff-only admin views over documents_read. A user who may not see the ticket, or
may not view the document's model, gets a 404, as for a ticket page that is not theirs.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from dispatch.common.admin_base import ReadOnlyModelAdmin, actor_for_request, state_badge
from dispatch.common.downloads import document_response
from dispatch.common.errors import DispatchError
from dispatch.tickets import policy
from dispatch.tickets.admin import (
    TicketPanel,
    action_offered,
    money,
    refusal_message,
    ticket_link,
    ticket_panels_register,
)
from dispatch.tickets.admin_actions import cents
from dispatch.tickets.models import Ticket

from . import documents_read as documents
from .admin_common import actor_names, page_version, visible_ticket
from .exports import invoice_csv
from .models import CloseoutPacket, Invoice, InvoiceLine
from .services import (
    BILLING_APPROVE_INVOICE,
    BILLING_EDIT_INVOICE,
    BILLING_REVISE_INVOICE,
    invoice_approve,
    invoice_lines_replace,
    invoice_revise,
)
from .services.invoice_review import MAX_LINES

PACKET_RENDER_KEY = "packet-render"


def document_download(document: documents.Document) -> HttpResponse:
    """A document as a download: never shown in the admin's origin."""
    return document_response(document.data, document.content_type, document.filename, inline=False)


def invoice_status_badge(invoice: Invoice) -> str:
    return format_html(
        '<span class="rd-inv rd-inv--{}">{}</span>', invoice.status.lower(), invoice.get_status_display()
    )


def nte_text(invoice: Invoice) -> str:
    if invoice.nte_cents is None:
        return ""
    return money(invoice.nte_cents, invoice.currency)


def short_hash(value: str) -> str:
    return f"{value[:12]}…" if value else ""


# --- the ticket page's section --------------------------------------------------------------------


def packet_row(row: CloseoutPacket, names: dict[str, str]) -> dict:
    return {
        "row": row,
        "who": names.get(row.created_by, row.created_by),
        "short_hash": short_hash(row.sha256),
        "verify_url": documents.packet_summary(row)["verify_url"],
        "pdf_url": reverse("admin:closeout_closeoutpacket_pdf", args=[row.pk]),
        "json_url": reverse("admin:closeout_closeoutpacket_json", args=[row.pk]),
    }


def invoice_files(invoice: Invoice) -> dict:
    return {
        "page_url": reverse("admin:closeout_invoice_change", args=[invoice.pk]),
        "pdf_url": reverse("admin:closeout_invoice_pdf", args=[invoice.pk]),
        "csv_url": reverse("admin:closeout_invoice_csv", args=[invoice.pk]),
        "json_url": reverse("admin:closeout_invoice_json", args=[invoice.pk]),
    }


def closeout_documents_panel(request, ticket: Ticket) -> dict | None:
    """The section's context: every packet version and invoice version of the ticket this user may
    read, and the "Issue packet" button when the policy offers it; None when there is nothing."""
    user = request.user
    packets = documents.packet_versions(ticket) if user.has_perm("closeout.view_closeoutpacket") else []
    invoices = documents.invoice_versions(ticket) if user.has_perm("closeout.view_invoice") else []
    issue = action_offered(request, ticket, PACKET_RENDER_KEY)
    if not packets and not invoices and issue is None:
        return None
    names = actor_names([row.created_by for row in packets])
    current = next((invoice for invoice in invoices if invoice.status != Invoice.Status.SUPERSEDED), None)
    return {
        "ticket": ticket,
        "packets": [packet_row(row, names) for row in packets],
        "issue": issue,
        "invoice": current,
        "invoice_badge": invoice_status_badge(current) if current else "",
        "invoice_files": invoice_files(current) if current else None,
        "invoice_amounts": invoice_amounts(current) if current else None,
        # The one policy decides who reviews: the same answer the approve button's service gives.
        "invoice_reviewer": current is not None
        and policy.command_allowed(
            BILLING_APPROVE_INVOICE, actor_for_request(request, BILLING_APPROVE_INVOICE), ticket
        ),
        "invoice_replaces": next(
            (invoice.number for invoice in invoices if current is not None and invoice.pk == current.supersedes_id), ""
        ),
        "earlier_invoices": [
            {
                "invoice": invoice,
                "badge": invoice_status_badge(invoice),
                "total": money(invoice.total_cents, invoice.currency),
                **invoice_files(invoice),
            }
            for invoice in invoices
            if invoice is not current
        ],
    }


def percent(bps: int) -> str:
    return f"{Decimal(bps) / 100:.2f}".rstrip("0").rstrip(".") + "%"


def invoice_amounts(invoice: Invoice) -> dict:
    currency = invoice.currency
    return {
        "labor_tax_rate": percent(invoice.labor_tax_bps),
        "parts_tax_rate": percent(invoice.parts_tax_bps),
        "labor": money(invoice.labor_cents, currency),
        "parts": money(invoice.parts_cents, currency),
        "fees": money(invoice.fees_cents, currency),
        "subtotal": money(invoice.subtotal_cents, currency),
        "tax": money(invoice.tax_cents, currency),
        "total": money(invoice.total_cents, currency),
        "nte": nte_text(invoice),
    }


ticket_panels_register(
    TicketPanel(
        "closeout-documents",
        "admin/closeout/ticket_documents.html",
        closeout_documents_panel,
        action_keys=(PACKET_RENDER_KEY,),
    )
)


# --- packets ----------------------------------------------------------------------------------------


@admin.register(CloseoutPacket)
class CloseoutPacketAdmin(ReadOnlyModelAdmin):
    """Packet versions are compiled by the services (close, approval, "Issue packet"): listed and
    downloaded here, never changed."""

    list_display = ("version", "ticket_ref", "reason", "hash_cell", "pdf_cell", "created_at", "files")
    list_display_links = ("version",)
    list_filter = ("pdf_status", "forced")
    search_fields = ("ticket__id", "sha256", "reason")
    list_select_related = ("ticket",)
    fields = (
        "ticket_ref",
        ("version", "forced"),
        "reason",
        "sha256",
        "verify_link",
        ("pdf_status", "pdf_pages"),
        "pdf_error",
        ("created_by", "created_at"),
        "files",
    )
    readonly_fields = ("ticket_ref", "verify_link", "files")

    def get_queryset(self, request):
        # The list never shows the packet's JSON, which carries the whole job.
        return super().get_queryset(request).defer("packet")

    @admin.display(description="ticket", ordering="ticket__created_at")
    def ticket_ref(self, row: CloseoutPacket) -> str:
        return ticket_link(row.ticket)

    @admin.display(description="sha256")
    def hash_cell(self, row: CloseoutPacket) -> str:
        return format_html('<code class="rd-hash" title="{}">{}</code>', row.sha256, short_hash(row.sha256))

    @admin.display(description="PDF", ordering="pdf_status")
    def pdf_cell(self, row: CloseoutPacket) -> str:
        return pdf_status_html(row)

    @admin.display(description="verification")
    def verify_link(self, row: CloseoutPacket) -> str:
        url = documents.packet_summary(row)["verify_url"]
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description="files")
    def files(self, row: CloseoutPacket) -> str:
        return format_html(
            '<a href="{}">PDF</a><span class="rd-sep">·</span><a href="{}">JSON</a>',
            reverse("admin:closeout_closeoutpacket_pdf", args=[row.pk]),
            reverse("admin:closeout_closeoutpacket_json", args=[row.pk]),
        )

    def get_urls(self):
        download = self.admin_site.admin_view(self.packet_file)
        return [
            path("<path:object_id>/pdf/", download, {"fmt": "pdf"}, name="closeout_closeoutpacket_pdf"),
            path("<path:object_id>/json/", download, {"fmt": "json"}, name="closeout_closeoutpacket_json"),
            *super().get_urls(),
        ]

    def packet_file(self, request, object_id, fmt):
        """The version's PDF (rendered now if the worker has not yet) or its JSON exactly as hashed."""
        row = CloseoutPacket.objects.filter(pk=_uuid_or_none(unquote(object_id))).first()
        if row is None or not self.has_view_permission(request, row):
            raise Http404("No such packet.")
        ticket = visible_ticket(self, request, row.ticket_id)
        try:
            document = documents.packet_pdf(row) if fmt == "pdf" else documents.packet_json(row)
        except DispatchError as error:
            # A PDF that failed to render: the reason is on the packet, the JSON is still there.
            messages.error(request, refusal_message(error))
            return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
        return document_download(document)


def pdf_status_html(row: CloseoutPacket) -> str:
    if row.pdf_status == CloseoutPacket.PdfStatus.READY:
        pages = f" · {row.pdf_pages} page{'' if row.pdf_pages == 1 else 's'}" if row.pdf_pages else ""
        return format_html('<span class="rd-pdf rd-pdf--ready">Ready{}</span>', pages)
    if row.pdf_status == CloseoutPacket.PdfStatus.FAILED:
        return format_html('<span class="rd-pdf rd-pdf--failed" title="{}">Failed</span>', row.pdf_error)
    return format_html('<span class="rd-pdf rd-pdf--pending">Rendering…</span>')


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- invoices: finance's review --------------------------------------------------------------------


class InvoiceLineForm(forms.Form):
    """One line as finance types it: the price in dollars, the line's total is the service's."""

    # An empty first choice: the blank row for a new line is left out when untouched.
    kind = forms.ChoiceField(choices=[("", "—"), *InvoiceLine.Kind.choices])
    item_code = forms.CharField(required=False, max_length=64)
    description = forms.CharField(max_length=300)
    quantity = forms.DecimalField(min_value=Decimal("0.01"), max_value=10000, max_digits=10, decimal_places=2)
    unit_price = forms.DecimalField(label="Unit price ($)", min_value=0, max_digits=12, decimal_places=2)
    taxable = forms.BooleanField(required=False)

    def as_line(self) -> dict:
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "description": data["description"],
            "quantity": str(data["quantity"]),
            "unit_cents": cents(data["unit_price"]),
            "taxable": data["taxable"],
            "item_code": data.get("item_code", ""),
        }


InvoiceLineFormSet = forms.formset_factory(
    InvoiceLineForm, extra=1, can_delete=True, max_num=MAX_LINES, validate_max=True, absolute_max=MAX_LINES
)


def lines_formset(invoice: Invoice, data=None) -> forms.BaseFormSet:
    if data is not None:
        return InvoiceLineFormSet(data, prefix="lines")
    initial = [
        {
            "kind": line.kind,
            "item_code": line.item_code,
            "description": line.description,
            "quantity": line.quantity,
            "unit_price": (Decimal(line.unit_cents) / 100).quantize(Decimal("0.01")),
            "taxable": line.taxable,
        }
        for line in invoice.lines.order_by("position")
    ]
    return InvoiceLineFormSet(initial=initial, prefix="lines")


class ApproveForm(forms.Form):
    nte_override_reason = forms.CharField(
        label="Why approve it over the NTE",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, invoice: Invoice, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if invoice.exceeds_nte:
            field = self.fields["nte_override_reason"]
            field.required = True
            field.min_length = 10
            field.widget.attrs["minlength"] = 10
            field.help_text = "Who agreed to the amount, and how (10+ characters)."
        else:
            del self.fields["nte_override_reason"]


class ReviseForm(forms.Form):
    reason = forms.CharField(
        label="What is corrected",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="A new draft version with the same lines replaces this one; it stays as approved.",
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def _why_not(refusal: DispatchError | None, approved: bool) -> str:
    """Why the page offers no form: a reader's role said plainly, any other refusal as the service says it."""
    if refusal is None:
        return ""
    if refusal.dimension == "role":
        what = "correct approved invoices" if approved else "edit and approve invoices"
        return f"Only finance may {what}; you can read this one and download its files."
    return refusal_message(refusal)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyModelAdmin):
    """Invoice versions. Nothing here saves an invoice row: the page's forms call the services, and
    an approved or superseded version offers no form at all."""

    list_display = ("number", "ticket_ref", "version", "status_cell", "total", "nte_cell", "approved_at")
    list_filter = ("status", "exceeds_nte")
    search_fields = ("number", "ticket__id")
    list_select_related = ("ticket",)
    actions = ("export_csv",)

    @admin.display(description="ticket", ordering="ticket__created_at")
    def ticket_ref(self, invoice: Invoice) -> str:
        return ticket_link(invoice.ticket)

    @admin.display(description="status", ordering="status")
    def status_cell(self, invoice: Invoice) -> str:
        return invoice_status_badge(invoice)

    @admin.display(description="total", ordering="total_cents")
    def total(self, invoice: Invoice) -> str:
        return money(invoice.total_cents, invoice.currency)

    @admin.display(description="NTE", ordering="exceeds_nte")
    def nte_cell(self, invoice: Invoice) -> str:
        if invoice.exceeds_nte:
            return format_html('<span class="rd-flag" title="Not-to-exceed {}">over NTE</span>', nte_text(invoice))
        return nte_text(invoice) or None

    @admin.action(description="Export selected invoices as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        invoices = list(
            queryset.select_related("ticket__site", "ticket__account", "ticket__assigned_tech", "supersedes").order_by(
                "number"
            )
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return document_download(
            documents.Document(
                invoice_csv(invoices).encode("utf-8"), "text/csv; charset=utf-8", f"invoices-{stamp}.csv"
            )
        )

    # --- urls -----------------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/pdf/", view(self.invoice_file), {"fmt": "pdf"}, name="closeout_invoice_pdf"),
            path("<path:object_id>/csv/", view(self.invoice_file), {"fmt": "csv"}, name="closeout_invoice_csv"),
            path("<path:object_id>/json/", view(self.invoice_file), {"fmt": "json"}, name="closeout_invoice_json"),
            path("<path:object_id>/lines/", view(self.lines_view), name="closeout_invoice_lines"),
            path("<path:object_id>/approve/", view(self.approve_view), name="closeout_invoice_approve"),
            path("<path:object_id>/revise/", view(self.revise_view), name="closeout_invoice_revise"),
            *super().get_urls(),
        ]

    def readable_invoice(self, request, object_id) -> Invoice:
        """The invoice if this user may view invoices and see its ticket; else 404."""
        invoice = (
            Invoice.objects.filter(pk=_uuid_or_none(unquote(object_id)))
            .select_related("ticket__site", "ticket__account", "ticket__assigned_tech", "supersedes")
            .first()
        )
        if invoice is None or not self.has_view_permission(request, invoice):
            raise Http404("No such invoice.")
        visible_ticket(self, request, invoice.ticket_id)
        return invoice

    def invoice_file(self, request, object_id, fmt):
        invoice = self.readable_invoice(request, object_id)
        if fmt == "pdf":
            try:
                document = documents.invoice_pdf(invoice)
            except DispatchError as error:  # the stored PDF out of reach: say so on the invoice
                messages.error(request, refusal_message(error))
                return HttpResponseRedirect(reverse("admin:closeout_invoice_change", args=[invoice.pk]))
        elif fmt == "csv":
            document = documents.invoice_csv_document(invoice)
        else:
            body = json.dumps(documents.invoice_read(invoice.ticket, invoice.version), indent=2, ensure_ascii=False)
            document = documents.Document(body.encode("utf-8"), "application/json", f"{invoice.number}.json")
        return document_download(document)

    # --- the review page ------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return self.review(request, self.readable_invoice(request, object_id))

    def review(self, request, invoice: Invoice, *, formset=None, approve_form=None, revise_form=None, status=200):
        """The invoice page: the version's lines and totals, its files and siblings, and the forms
        the policy offers this user now (edit and approve a draft, correct an approved version)."""
        ticket = invoice.ticket

        def refusal(command):
            return policy.command_refusal(command, actor_for_request(request, command), ticket)

        draft = invoice.status == Invoice.Status.DRAFT
        approved = invoice.status == Invoice.Status.APPROVED
        edit_refusal = refusal(BILLING_EDIT_INVOICE) if draft else None
        approve_refusal = refusal(BILLING_APPROVE_INVOICE) if draft else None
        revise_refusal = refusal(BILLING_REVISE_INVOICE) if approved else None
        can_edit = draft and edit_refusal is None
        can_approve = draft and approve_refusal is None
        can_revise = approved and revise_refusal is None
        why_not = next((r for r in (edit_refusal, approve_refusal, revise_refusal) if r is not None), None)
        versions = documents.invoice_versions(ticket)
        lines = list(invoice.lines.order_by("position"))
        formset = (formset or lines_formset(invoice)) if can_edit else None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Invoice {invoice.number}",
            "subtitle": ticket.short_ref,
            "opts": self.opts,
            "invoice": invoice,
            "ticket": ticket,
            "state_badge": state_badge(ticket.state, ticket.get_state_display()),
            "status_badge": invoice_status_badge(invoice),
            "amounts": invoice_amounts(invoice),
            "lines": [
                {
                    "line": line,
                    "unit": money(line.unit_cents, invoice.currency),
                    "total": money(line.total_cents, invoice.currency),
                }
                for line in lines
            ],
            # The editable rows, each beside the stored line's total while the form is unsent.
            "formset_rows": [
                {
                    "form": form,
                    "total": money(lines[index].total_cents, invoice.currency)
                    if not formset.is_bound and index < len(lines)
                    else "",
                }
                for index, form in enumerate(formset.forms)
            ]
            if formset is not None
            else [],
            "files": invoice_files(invoice),
            "versions": [
                {
                    "invoice": other,
                    "badge": invoice_status_badge(other),
                    "total": money(other.total_cents, other.currency),
                }
                for other in versions
            ],
            "formset": formset,
            "approve_form": (approve_form or ApproveForm(invoice=invoice)) if can_approve else None,
            "revise_form": (revise_form or ReviseForm()) if can_revise else None,
            "why_not": _why_not(why_not, approved),
            "expected_version": ticket.version,
            "changelist_url": reverse("admin:closeout_invoice_changelist"),
            "ticket_url": reverse("admin:tickets_ticket_change", args=[ticket.pk]),
        }
        return TemplateResponse(request, "admin/closeout/invoice/review.html", context, status=status)

    def acted(self, request, invoice: Invoice, outcome, text: str):
        """After a service ran: the admin's log, one line for the user, and the version it left."""
        written = outcome.result.invoice
        self.log_change(request, written, f"{text} ({outcome.event.tool_name}, audit #{outcome.event.seq})")
        messages.success(request, f"{written.number}: {text}.")
        return HttpResponseRedirect(reverse("admin:closeout_invoice_change", args=[written.pk]))

    def refused(self, request, invoice: Invoice, error: DispatchError, **forms_sent):
        """A service's refusal on the page it came from, with what the user typed when the invoice
        still offers that form (a draft approved meanwhile no longer does)."""
        messages.error(request, refusal_message(error))
        invoice = self.readable_invoice(request, str(invoice.pk))
        return self.review(request, invoice, status=error.status, **forms_sent)

    def lines_view(self, request, object_id):
        """Save a draft's lines: all of them go to invoice_lines_replace, which recomputes the totals."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        invoice = self.readable_invoice(request, object_id)
        formset = lines_formset(invoice, request.POST)
        if not formset.is_valid():
            return self.review(request, invoice, formset=formset, status=400)
        deleted = set(map(id, formset.deleted_forms))
        lines = [form.as_line() for form in formset.forms if form.cleaned_data and id(form) not in deleted]
        try:
            outcome = invoice_lines_replace(
                actor=actor_for_request(request, BILLING_EDIT_INVOICE),
                ticket_id=invoice.ticket_id,
                invoice_id=invoice.pk,
                lines=lines,
                expected_version=page_version(request),
            )
        except DispatchError as error:
            return self.refused(request, invoice, error, formset=formset)
        total = money(outcome.result.invoice.total_cents, invoice.currency)
        return self.acted(
            request, invoice, outcome, f"{len(lines)} line{'' if len(lines) == 1 else 's'} saved, total {total}"
        )

    def approve_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        invoice = self.readable_invoice(request, object_id)
        form = ApproveForm(request.POST, invoice=invoice)
        if not form.is_valid():
            return self.review(request, invoice, approve_form=form, status=400)
        try:
            outcome = invoice_approve(
                actor=actor_for_request(request, BILLING_APPROVE_INVOICE),
                ticket_id=invoice.ticket_id,
                invoice_id=invoice.pk,
                nte_override_reason=form.cleaned_data.get("nte_override_reason", ""),
                expected_version=page_version(request),
            )
        except DispatchError as error:
            return self.refused(request, invoice, error, approve_form=form)
        payload = outcome.event.payload
        if not payload.get("outbox_id"):
            sent = "no customer email on file, nothing sent"
        elif payload.get("packet_attached"):
            sent = "emailed to the customer with the packet"
        else:
            sent = "emailed to the customer without the packet, whose PDF failed (see the ticket's documents)"
        return self.acted(request, invoice, outcome, f"approved; {sent}")

    def revise_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        invoice = self.readable_invoice(request, object_id)
        form = ReviseForm(request.POST)
        if not form.is_valid():
            return self.review(request, invoice, revise_form=form, status=400)
        try:
            outcome = invoice_revise(
                actor=actor_for_request(request, BILLING_REVISE_INVOICE),
                ticket_id=invoice.ticket_id,
                invoice_id=invoice.pk,
                reason=form.cleaned_data["reason"],
                expected_version=page_version(request),
            )
        except DispatchError as error:
            return self.refused(request, invoice, error, revise_form=form)
        return self.acted(request, invoice, outcome, f"draft version {outcome.result.invoice.version} started")
