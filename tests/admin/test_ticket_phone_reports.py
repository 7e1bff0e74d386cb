"""A technician calls in what they did, and the dispatcher records it on the ticket page: photos
and files they sent, a note, their time, the parts they used. Each form calls the service the
technician's own page calls, and the audit event says the technician reported it by phone and the
dispatcher recorded it. Bad input gets the technician page's own error and changes nothing."""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from dispatch.closeout.models import Evidence, LaborEntry, PartUsage
from dispatch.tickets.models import AuditEvent, Ticket
from tests.admin.conftest import logged_in
from tests.closeout.test_evidence_photos import phone_jpeg, stored_files
from tests.factories import PriceBookItemFactory, TechnicianFactory, ticket_at, ticket_new

pytestmark = pytest.mark.django_db

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture
def technician():
    return TechnicianFactory(display_name="Luis Ortega")


@pytest.fixture
def job(technician):
    return ticket_at("IN_PROGRESS", technician=technician)


def png(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def record_url(ticket, what: str) -> str:
    return reverse("admin:closeout_evidence_record", args=[ticket.pk, what])


def record(client, ticket, what: str, data: dict, *, version=None):
    ticket.refresh_from_db()
    post = {"expected_version": ticket.version if version is None else version, **data}
    return client.post(record_url(ticket, what), post)


def page(client, ticket) -> str:
    return client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()


def section(html: str) -> str:
    return html.split('id="evidence-h"')[1].split("</section>")[0]


def snapshot(ticket) -> tuple:
    ticket = Ticket.objects.get(pk=ticket.pk)
    return (
        ticket.version,
        AuditEvent.objects.filter(ticket=ticket).count(),
        Evidence.objects.filter(ticket=ticket).count(),
        LaborEntry.objects.filter(ticket=ticket).count(),
        PartUsage.objects.filter(ticket=ticket).count(),
    )


def recorded_by_phone(event: AuditEvent, dispatcher_user, technician) -> None:
    assert event.actor_type == "HUMAN" and event.actor_role == "dispatcher"
    assert event.actor_id == str(dispatcher_user.pk)
    request = event.payload["request"]
    assert request["reported_by"] == {"technician_id": str(technician.pk), "name": "Luis Ortega"}
    assert request["reported_via"] == "phone"
    assert request["reason"] == "Reported by Luis Ortega by phone; recorded by dispatch on their behalf."


def test_dispatcher_records_labor_reported_by_phone(dispatcher_client, job, technician):
    response = record(
        dispatcher_client,
        job,
        "labor",
        {"technician_id": technician.pk, "hours": "1", "minutes": "30", "description": "Re-hung the closer arm"},
    )
    assert response.status_code == 302 and response["Location"].endswith("#evidence-h")

    entry = LaborEntry.objects.get(ticket=job)
    assert (entry.minutes, entry.technician_id, entry.description) == (90, technician.pk, "Re-hung the closer arm")
    assert entry.created_by == str(dispatcher_client.user.pk)
    event = AuditEvent.objects.filter(ticket=job).latest("seq")
    assert event.tool_name == "closeout.add_labor"
    recorded_by_phone(event, dispatcher_client.user, technician)

    html = page(dispatcher_client, job)
    assert "1 h 30 min logged for Luis Ortega." in html
    assert "Re-hung the closer arm" in section(html) and "1 h 30 min" in section(html)
    # In the timeline, the reason the event gives is the phone call.
    assert "Reported by Luis Ortega by phone; recorded by dispatch on their behalf." in html


def test_dispatcher_records_labor_that_started_earlier_in_the_sites_time(dispatcher_client, job, technician):
    job.site.timezone = "America/Los_Angeles"
    job.site.save(update_fields=["timezone"])
    started = job.created_at.astimezone(__import__("zoneinfo").ZoneInfo("America/Los_Angeles"))
    typed = started.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")
    record(dispatcher_client, job, "labor", {"technician_id": technician.pk, "minutes": "45", "worked_at": typed})
    entry = LaborEntry.objects.get(ticket=job)
    assert entry.worked_at == started.replace(second=0, microsecond=0)


def test_dispatcher_adds_the_photos_a_technician_sent(dispatcher_client, job, technician, settings):
    response = dispatcher_client.post(
        record_url(job, "files"),
        {
            "expected_version": job.version,
            "technician_id": technician.pk,
            "evidence_key": "photo_before_door_edge_and_strike",
            "kind": "PHOTO",
            "file": [SimpleUploadedFile("IMG_1.jpg", phone_jpeg()), SimpleUploadedFile("IMG_2.png", png())],
        },
    )
    assert response.status_code == 302

    items = list(Evidence.objects.filter(ticket=job).order_by("created_at", "id"))
    assert [item.content_type for item in items] == ["image/jpeg", "image/png"]
    for item in items:
        assert item.kind == "PHOTO" and item.evidence_key == "photo_before_door_edge_and_strike"
        assert item.created_by == str(dispatcher_client.user.pk) and item.created_by_role == "dispatcher"
        assert item.metadata["reported_by"] == {"technician_id": str(technician.pk), "name": "Luis Ortega"}
        assert item.metadata["thumbnail"]
    events = list(AuditEvent.objects.filter(ticket=job, tool_name="closeout.add_evidence").order_by("seq"))
    assert len(events) == 2
    for event in events:
        recorded_by_phone(event, dispatcher_client.user, technician)
        assert event.payload["request"]["file"] == ["IMG_1.jpg", "IMG_2.png"]

    html = section(page(dispatcher_client, job))
    for item in items:
        assert reverse("admin:closeout_evidence_thumbnail", args=[item.pk]) in html
    assert "reported by Luis Ortega by phone" in html
    assert len(stored_files(settings)) == 4  # two originals, two thumbnails


def test_dispatcher_adds_a_document_the_technician_emailed(dispatcher_client, job, technician):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    response = dispatcher_client.post(
        record_url(job, "files"),
        {
            "expected_version": job.version,
            "technician_id": technician.pk,
            "evidence_key": "other",
            "kind": "DOCUMENT",
            "file": SimpleUploadedFile("quote.pdf", pdf),
        },
    )
    assert response.status_code == 302
    item = Evidence.objects.get(ticket=job)
    assert (item.kind, item.content_type, item.evidence_key) == ("DOCUMENT", "application/pdf", "")


def test_dispatcher_records_a_note_reported_by_phone(dispatcher_client, job, technician):
    record(
        dispatcher_client,
        job,
        "note",
        {
            "technician_id": technician.pk,
            "evidence_key": "note_adjustments_and_test_cycles",
            "text": "Shimmed the strike; 20 cycles, latches every time.",
        },
    )
    item = Evidence.objects.get(ticket=job)
    assert (item.kind, item.evidence_key) == ("NOTE", "note_adjustments_and_test_cycles")
    assert item.metadata["text"] == "Shimmed the strike; 20 cycles, latches every time."
    recorded_by_phone(AuditEvent.objects.filter(ticket=job).latest("seq"), dispatcher_client.user, technician)
    html = section(page(dispatcher_client, job))
    assert "Shimmed the strike; 20 cycles, latches every time." in html


def test_dispatcher_records_parts_reported_by_phone(dispatcher_client, job, technician):
    closer = PriceBookItemFactory(sku="CLOSER-4040", name="LCN 4040 closer", unit_cents=28900)
    record(dispatcher_client, job, "part", {"technician_id": technician.pk, "sku": closer.sku, "quantity": "1"})
    record(
        dispatcher_client,
        job,
        "part",
        {
            "technician_id": technician.pk,
            "description": "Shims from the hardware store",
            "quantity": "3",
            "price": "$2.50",
        },
    )
    usages = list(PartUsage.objects.filter(ticket=job).order_by("created_at", "id"))
    assert [(u.price_book_item_id, u.description, str(u.quantity), u.unit_cents) for u in usages] == [
        (closer.pk, "", "1.00", None),
        (None, "Shims from the hardware store", "3.00", 250),
    ]
    events = AuditEvent.objects.filter(ticket=job, tool_name="closeout.add_part")
    assert events.count() == 2
    for event in events:
        recorded_by_phone(event, dispatcher_client.user, technician)
    html = page(dispatcher_client, job)
    assert "Shims from the hardware store × 3 added for Luis Ortega." in html
    assert "LCN 4040 closer" in section(html) and "$7.50" in section(html)


def tech_page_refusal(technician, job, action: str, data: dict) -> dict:
    """What the technician's own page answers for the same input (its script's JSON)."""
    phone = Client()
    phone.force_login(technician.user)
    answer = phone.post(reverse("field:act", args=[job.id, action]), data, HTTP_X_FIELD_FETCH="1")
    return answer.json()


@pytest.mark.parametrize(
    "what, data, tech_action, tech_data",
    [
        ("part", {"quantity": "-1", "sku": "CLOSER-4040"}, "part", {"quantity": "-1", "sku": "CLOSER-4040"}),
        ("part", {"quantity": "abc", "sku": "CLOSER-4040"}, "part", {"quantity": "abc", "sku": "CLOSER-4040"}),
        ("part", {"sku": "NO-SUCH-SKU"}, "part", {"sku": "NO-SUCH-SKU"}),
        ("labor", {"minutes": "ninety"}, "labor", {"minutes": "ninety"}),
        ("labor", {"minutes": ""}, "labor", {"minutes": ""}),
        ("labor", {"minutes": "0"}, "labor", {"minutes": "0"}),
        ("labor", {"minutes": "100000"}, "labor", {"minutes": "100000"}),
        (
            "note",
            {"evidence_key": "photo_before_door_edge_and_strike", "text": "It's fixed"},
            "note",
            {"evidence_key": "photo_before_door_edge_and_strike", "text": "It's fixed"},
        ),
        ("note", {"text": "x" * 4001}, "note", {"text": "x" * 4001}),
    ],
)
def test_bad_input_gets_the_technician_pages_own_error_and_changes_nothing(
    dispatcher_client, job, technician, what, data, tech_action, tech_data
):
    PriceBookItemFactory(sku="CLOSER-4040")
    before = snapshot(job)
    response = record(dispatcher_client, job, what, {"technician_id": technician.pk, **data})
    assert response["Location"].endswith(f"#record-{what}")
    assert snapshot(job) == before

    theirs = tech_page_refusal(technician, job, tech_action, tech_data)
    assert snapshot(job) == before
    html = page(dispatcher_client, job)
    # The same code and words as the technician's page, at the top and in the form, kept open.
    assert f"Refused — {theirs['message']} [{theirs['code']}]" in html.replace("&#x27;", "'")
    form = section(html).split(f'id="record-{what}"')[1].split("</details>")[0]
    assert form.startswith(" open>") or " open" in form.split(">")[0]
    assert theirs["message"] in form.replace("&#x27;", "'") and f"<code>{theirs['code']}</code>" in form


@pytest.mark.parametrize(
    "name, data, code",
    [
        ("an oversized photo", phone_jpeg(), "INVALID_EVIDENCE_FILE"),
        ("a photo with a web page behind it", png() + HTML, "INVALID_EVIDENCE_FILE"),
        ("a web page named .jpg", HTML, "INVALID_EVIDENCE_FILE"),
        ("a PDF sent as a photo", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "INVALID_EVIDENCE_FILE"),
        ("an empty file", b"", "INVALID_EVIDENCE_FILE"),
    ],
)
def test_a_bad_file_is_refused_as_on_the_technician_page_and_nothing_is_stored(
    dispatcher_client, job, technician, settings, name, data, code
):
    settings.DISPATCH_EVIDENCE_MAX_BYTES = 2_000  # a phone photo is 4 kB here
    before = snapshot(job)
    # The second file is the bad one: the first, already written, goes with it.
    response = dispatcher_client.post(
        record_url(job, "files"),
        {
            "expected_version": job.version,
            "technician_id": technician.pk,
            "evidence_key": "photo_before_door_edge_and_strike",
            "kind": "PHOTO",
            "file": [SimpleUploadedFile("ok.png", png()), SimpleUploadedFile("door.jpg", data)],
        },
    )
    assert response.status_code == 302
    assert snapshot(job) == before
    assert stored_files(settings) == []
    theirs = tech_page_refusal(
        technician,
        job,
        "photo",
        {"evidence_key": "photo_before_door_edge_and_strike", "file": SimpleUploadedFile("door.jpg", data)},
    )
    assert theirs["code"] == code, name
    html = page(dispatcher_client, job).replace("&#x27;", "'")
    assert f"Refused — {theirs['message']} [{code}]" in html, name


@pytest.mark.parametrize(
    "data, field",
    [
        ({"technician_id": ""}, "technician_id"),
        ({"technician_id": "not-a-uuid"}, "technician_id"),
        ({"technician_id": "5f0c8a1e-2b7d-4c39-9e61-0a4d2f8b7c15"}, "technician_id"),
        ({"hours": "-1", "minutes": "120"}, "hours"),
        ({"hours": "1.5"}, "hours"),
        ({"worked_at": "yesterday"}, "worked_at"),
        ({"worked_at": "2999-01-01T09:00"}, "worked_at"),
        ({"worked_at": "2001-01-01T09:00"}, "worked_at"),
    ],
)
def test_a_labor_form_with_a_wrong_field_says_which_and_changes_nothing(
    dispatcher_client, job, technician, data, field
):
    before = snapshot(job)
    record(dispatcher_client, job, "labor", {"technician_id": technician.pk, "minutes": "30", **data})
    assert snapshot(job) == before
    form = section(page(dispatcher_client, job)).split('id="record-labor"')[1].split("</details>")[0]
    assert "INVALID_REQUEST" in form
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', form), form


def test_a_price_that_is_not_an_amount_is_refused(dispatcher_client, job, technician):
    before = snapshot(job)
    record(dispatcher_client, job, "part", {"technician_id": technician.pk, "description": "Shims", "price": "cheap"})
    assert snapshot(job) == before
    assert "&#x27;price&#x27; must be an amount like 125.50." in page(dispatcher_client, job)


def test_a_refused_form_keeps_what_was_typed(dispatcher_client, job, technician):
    record(
        dispatcher_client,
        job,
        "labor",
        {"technician_id": technician.pk, "minutes": "ninety", "description": "Adjusted the <b>closer</b>"},
    )
    form = section(page(dispatcher_client, job)).split('id="record-labor"')[1].split("</details>")[0]
    assert 'value="ninety"' in form and 'value="Adjusted the &lt;b&gt;closer&lt;/b&gt;"' in form
    assert f'<option value="{technician.pk}" selected>' in form
    # Shown once: the next visit has the form closed and empty again.
    again = section(page(dispatcher_client, job)).split('id="record-labor"')[1].split("</details>")[0]
    assert "ninety" not in again and "aria-invalid" not in again


def test_a_second_press_of_the_same_form_is_refused_as_a_stale_page(dispatcher_client, job, technician):
    stale = Ticket.objects.get(pk=job.pk).version
    data = {"technician_id": technician.pk, "minutes": "30"}
    record(dispatcher_client, job, "labor", data, version=stale)
    after_first = snapshot(job)
    record(dispatcher_client, job, "labor", data, version=stale)
    assert snapshot(job) == after_first
    assert LaborEntry.objects.filter(ticket=job).count() == 1
    assert "CONCURRENT_MODIFICATION" in page(dispatcher_client, job)


def test_a_form_without_the_pages_version_is_refused(dispatcher_client, job, technician):
    before = snapshot(job)
    dispatcher_client.post(record_url(job, "labor"), {"technician_id": technician.pk, "minutes": "30"})
    assert snapshot(job) == before


def test_qa_is_not_offered_the_forms_and_cannot_post_them(client, job, technician):
    qa = logged_in(client, "qa")
    assert 'id="record-' not in page(qa, job)
    before = snapshot(job)
    record(qa, job, "labor", {"technician_id": technician.pk, "minutes": "30"})
    assert snapshot(job) == before
    assert "TOOL_ROLE_FORBIDDEN" in page(qa, job)


def test_the_forms_wait_for_a_technician_on_the_job(dispatcher_client):
    ticket = ticket_new()
    assert 'id="record-' not in page(dispatcher_client, ticket)


def test_a_closed_job_takes_no_phone_report(dispatcher_client, technician):
    closed = ticket_at("CLOSED", technician=technician)
    assert 'id="record-' not in page(dispatcher_client, closed)
    before = snapshot(closed)
    record(dispatcher_client, closed, "note", {"technician_id": technician.pk, "text": "One more thing"})
    record(dispatcher_client, closed, "labor", {"technician_id": technician.pk, "minutes": "30"})
    assert snapshot(closed) == before


def test_an_admin_records_as_a_dispatcher(admin_client_, job, technician):
    record(admin_client_, job, "labor", {"technician_id": technician.pk, "minutes": "15"})
    event = AuditEvent.objects.filter(ticket=job, tool_name="closeout.add_labor").get()
    assert event.actor_role == "dispatcher"


def test_the_forms_only_take_posts_and_know_their_names(dispatcher_client, job):
    assert dispatcher_client.get(record_url(job, "labor")).status_code == 405
    assert dispatcher_client.post(record_url(job, "anything"), {"expected_version": job.version}).status_code == 404
    unknown = reverse("admin:closeout_evidence_record", args=[uuid.uuid4(), "labor"])
    assert dispatcher_client.post(unknown, {"expected_version": 1}).status_code == 404


def test_the_audit_payload_keeps_the_form_short(dispatcher_client, job, technician):
    record(
        dispatcher_client,
        job,
        "note",
        {"technician_id": technician.pk, "text": "y" * 4000, "unexpected": "ignored"},
    )
    request = AuditEvent.objects.filter(ticket=job).latest("seq").payload["request"]
    assert len(request["text"]) == 500 and "unexpected" not in request
    assert json.dumps(request)


def test_labor_cannot_be_logged_for_a_technician_who_is_not_on_the_job(dispatcher_client, job, technician):
    # Labor is billed at its technician's rate: a technician who never worked the job is refused,
    # and is not offered in the form either.
    stranger = TechnicianFactory(display_name="Sam Stranger")
    before = snapshot(job)

    response = record(dispatcher_client, job, "labor", {"technician_id": stranger.pk, "hours": "2", "minutes": "0"})

    assert response.status_code == 302
    assert snapshot(job) == before
    html = page(dispatcher_client, job)
    assert "Choose the technician on this job who reported it." in html
    assert "Sam Stranger" not in section(html) and "Luis Ortega" in section(html)
