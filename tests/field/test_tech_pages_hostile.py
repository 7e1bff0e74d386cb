"""Hostile and odd input against the technician's pages at /tech/: what a technician (or someone
pretending to be one) sees when a post is malformed, oversized, forged, replayed or aimed at a
job that is not theirs. Every refusal here has a stable code (JSON for the page script's
`X-Field-Fetch: 1` posts) and leaves the ticket, its rows and the audit log as they were."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from dispatch.closeout.models import ChecklistResult, Evidence, LaborEntry, PartUsage
from dispatch.closeout.services import evidence_add, labor_add
from dispatch.field.actions import ACTIONS
from dispatch.scheduling.models import CheckIn, Departure
from dispatch.technicians.models import Technician
from dispatch.tickets.models import Approval, AuditEvent, Ticket
from tests.factories import (
    PriceBookItemFactory,
    TechnicianFactory,
    UserFactory,
    actor_for,
    ticket_at,
    ticket_dispatched,
    ticket_in_progress,
    window_soon,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
MARKUP = '<script>alert(1)</script><img src=x onerror="alert(2)">'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"


def signed_in(user) -> Client:
    # A server error comes back as a 500 response rather than an exception, as a phone sees it.
    client = Client(raise_request_exception=False)
    # Through the sign-in page, as a phone signs in (the lockout check needs the request).
    answer = client.post("/tech/login/", {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, answer.status_code
    return client


def jpeg(color=(200, 30, 30), name="door.jpg") -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="JPEG")
    buffer.seek(0)
    buffer.name = name
    return buffer


def act(client, ticket, action, data=None, *, key=None, fetch=True):
    headers = {"HTTP_IDEMPOTENCY_KEY": str(key or uuid.uuid4())}
    if fetch:
        headers["HTTP_X_FIELD_FETCH"] = "1"
    return client.post(reverse("field:act", args=[ticket.id, action]), data or {}, **headers)


def refused(answer, status: int, code: str) -> dict:
    """The JSON refusal the page script reads: not ok, with the stable code and a message."""
    assert answer.status_code == status, answer.content[:300]
    assert answer["Content-Type"] == "application/json"
    body = answer.json()
    assert body["ok"] is False and body["code"] == code, body
    assert body["message"]
    return body


def audit_count() -> int:
    return AuditEvent.objects.count()


def stored_files(ticket) -> list[str]:
    folder = f"evidence/{ticket.id}"
    return sorted(default_storage.listdir(folder)[1]) if default_storage.exists(folder) else []


@pytest.fixture
def technician():
    return TechnicianFactory(display_name="Dana Reyes")


@pytest.fixture
def dana(technician):
    return signed_in(technician.user)


@pytest.fixture
def dispatched(technician):
    return ticket_dispatched(technician=technician, **window_soon())


@pytest.fixture
def working(technician):
    return ticket_in_progress(technician=technician)


# --- wrong types and out-of-range numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lng", "message"),
    [
        ("91", "0", "location.lat must be between -90 and 90."),
        ("0", "181", "location.lng must be between -180 and 180."),
        ("nan", "0", "location.lat must be between -90 and 90."),
        ("-inf", "0", "location.lat must be between -90 and 90."),
        ("abc", "1", "The position must be numbers."),
        ("", "5", "The position must be numbers."),
    ],
)
def test_a_check_in_from_off_the_map_or_with_no_number_is_refused_and_the_job_does_not_start(
    dana, dispatched, lat, lng, message
):
    before = audit_count()
    body = refused(act(dana, dispatched, "check-in", {"lat": lat, "lng": lng}), 400, "INVALID_REQUEST")
    assert body["message"] == message
    assert Ticket.objects.get(pk=dispatched.pk).state == "DISPATCHED"
    assert not CheckIn.objects.filter(ticket=dispatched).exists()
    assert audit_count() == before


@pytest.mark.parametrize("eta", ["abc", "-5", "1e9", "721", "99999999999999999999999", "²"])
def test_an_eta_that_is_not_whole_minutes_within_half_a_day_is_refused_and_the_customer_hears_nothing(
    dana, dispatched, eta
):
    before = audit_count()
    body = refused(act(dana, dispatched, "depart", {"eta_minutes": eta}), 400, "INVALID_REQUEST")
    assert "eta_minutes" in body["message"]
    assert not Departure.objects.filter(ticket=dispatched).exists()
    assert audit_count() == before


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        ("abc", "'minutes' must be a whole number."),
        ("1e9", "'minutes' must be a whole number."),
        ("12.5", "'minutes' must be a whole number."),
        ("²", "'minutes' must be a whole number."),
        ("9" * 5000, "'minutes' must be a whole number."),
        ("-5", "Field 'minutes' must be a whole number from 1 to 1440."),
        ("0", "Field 'minutes' must be a whole number from 1 to 1440."),
        ("1441", "Field 'minutes' must be a whole number from 1 to 1440."),
        ("99999999999999999999999", "Field 'minutes' must be a whole number from 1 to 1440."),
        ("", "How many minutes?"),
    ],
)
def test_logged_minutes_that_are_not_a_whole_number_of_a_day_are_refused_and_no_time_is_logged(
    dana, working, minutes, message
):
    before = audit_count()
    body = refused(act(dana, working, "labor", {"minutes": minutes}), 400, "INVALID_REQUEST")
    assert body["message"] == message
    assert not LaborEntry.objects.filter(ticket=working).exists()
    assert audit_count() == before


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("abc", "Field 'quantity' must be a number."),
        ("sNaN", "Field 'quantity' must be a number."),
        ("Infinity", "Field 'quantity' must be a number."),
        ("-inf", "Field 'quantity' must be a number."),
        ("1e400", "Field 'quantity' must be a number."),
        ("0", "Field 'quantity' must be more than 0 and at most 10000."),
        ("-1", "Field 'quantity' must be more than 0 and at most 10000."),
        ("0.001", "Field 'quantity' must be more than 0 and at most 10000."),
        ("10001", "Field 'quantity' must be more than 0 and at most 10000."),
    ],
)
def test_a_part_quantity_that_is_not_a_sensible_number_is_refused_and_no_part_is_added(
    dana, working, quantity, message
):
    PriceBookItemFactory(sku="STRIKE-01")
    before = audit_count()
    body = refused(act(dana, working, "part", {"sku": "STRIKE-01", "quantity": quantity}), 400, "INVALID_REQUEST")
    assert body["message"] == message
    assert not PartUsage.objects.filter(ticket=working).exists()
    assert audit_count() == before


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("NaN", "'amount' must be an amount from 0 to 1,000,000."),
        ("sNaN", "'amount' must be an amount from 0 to 1,000,000."),
        ("1e400", "'amount' must be an amount from 0 to 1,000,000."),
        ("Infinity", "'amount' must be an amount from 0 to 1,000,000."),
        ("-1", "'amount' must be an amount from 0 to 1,000,000."),
        ("1000000.01", "'amount' must be an amount from 0 to 1,000,000."),
        ("abc", "'amount' must be an amount like 125.50."),
    ],
)
def test_an_extra_amount_that_is_not_money_is_refused_and_nothing_goes_for_approval(dana, working, amount, message):
    before = audit_count()
    body = refused(
        act(dana, working, "request-change", {"approval_type": "NTE_INCREASE", "amount": amount, "reason": "Closer"}),
        400,
        "INVALID_REQUEST",
    )
    assert body["message"] == message
    assert Ticket.objects.get(pk=working.pk).state == "IN_PROGRESS"
    assert not Approval.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_an_approval_type_that_does_not_exist_is_refused(dana, working):
    before = audit_count()
    body = refused(
        act(dana, working, "request-change", {"approval_type": "FREE_MONEY" * 1000, "reason": "r"}),
        400,
        "INVALID_REQUEST",
    )
    assert "NTE_INCREASE or PROPOSAL" in body["message"]
    assert Ticket.objects.get(pk=working.pk).state == "IN_PROGRESS"
    assert audit_count() == before


@pytest.mark.parametrize(
    "pressed_at", ["9999-12-31T23:59:59+00:00", "yesterday-ish", "2026-01-01T10:00:00", "x" * 10000]
)
def test_a_check_in_time_the_phone_cannot_vouch_for_is_replaced_by_the_server_clock(dana, dispatched, pressed_at):
    assert act(dana, dispatched, "check-in", {"pressed_at": pressed_at}).json()["ok"] is True
    arrived = CheckIn.objects.get(ticket=dispatched).arrived_at
    assert abs(timezone.now() - arrived) < timedelta(minutes=1)


def test_a_check_in_queued_an_hour_ago_keeps_the_time_the_button_was_pressed(dana, dispatched):
    from dispatch.tickets.models import StateTransition

    # Dispatched this morning; the technician arrived an hour ago, in a basement with no signal.
    StateTransition.objects.filter(ticket=dispatched).update(created_at=timezone.now() - timedelta(hours=3))
    pressed = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    assert act(dana, dispatched, "check-in", {"pressed_at": pressed.isoformat()}).json()["ok"] is True
    assert CheckIn.objects.get(ticket=dispatched).arrived_at == pressed


# --- oversized fields -----------------------------------------------------------------------------


def test_a_one_megabyte_note_is_refused_with_its_limit_and_nothing_is_saved(dana, working):
    before = audit_count()
    body = refused(act(dana, working, "note", {"text": "n" * 1_000_000}), 400, "INVALID_REQUEST")
    assert body["message"] == "Field 'text' is longer than 4000 characters."
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_a_post_bigger_than_the_servers_request_cap_is_refused_and_changes_nothing(dana, working):
    before = audit_count()
    answer = act(dana, working, "note", {"text": "n" * 3_000_000})
    assert answer.status_code == 400
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_a_ten_thousand_character_pause_reason_is_refused_and_the_job_keeps_going(dana, working):
    before = audit_count()
    body = refused(act(dana, working, "pause", {"reason": "r" * 10_000}), 400, "INVALID_REQUEST")
    assert body["message"] == "The reason is longer than 500 characters."
    assert Ticket.objects.get(pk=working.pk).state == "IN_PROGRESS"
    assert audit_count() == before


def test_a_ten_thousand_character_no_signature_reason_is_refused_and_nothing_is_saved(dana, working):
    before = audit_count()
    body = refused(act(dana, working, "no-signature", {"no_signature_reason": "r" * 10_000}), 400, "INVALID_REQUEST")
    assert body["message"] == "Field 'no_signature_reason' is longer than 4000 characters."
    assert not ChecklistResult.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_a_labor_correction_with_an_overlong_description_is_refused_and_the_entry_is_unchanged(dana, working):
    act(dana, working, "labor", {"minutes": "30", "description": "Adjust strike"})
    entry = LaborEntry.objects.get(ticket=working)
    before = audit_count()
    body = refused(
        act(dana, working, "labor-edit", {"labor_entry_id": entry.id, "description": "d" * 10_000}),
        400,
        "INVALID_REQUEST",
    )
    assert body["message"] == "Field 'description' is longer than 300 characters."
    entry.refresh_from_db()
    assert (entry.minutes, entry.description) == (30, "Adjust strike")
    assert audit_count() == before


def test_a_signature_without_the_signers_name_or_without_a_drawing_is_refused(dana, working):
    before = audit_count()
    no_name = refused(act(dana, working, "signature", {"file": jpeg(name="signature.png")}), 400, "INVALID_REQUEST")
    assert no_name["message"] == "Type the name of the person who signed."
    no_file = refused(act(dana, working, "signature", {"signer_name": "P" * 10_000}), 400, "INVALID_REQUEST")
    assert no_file["message"] == "Choose a file first."
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before


# --- hostile uploads through the page --------------------------------------------------------------


def _bomb() -> io.BytesIO:
    """A 100 KB PNG that decodes to 64 million pixels."""
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "bomb.png"
    return buffer


def _empty() -> io.BytesIO:
    buffer = io.BytesIO(b"")
    buffer.name = "door.jpg"
    return buffer


@pytest.mark.parametrize(("label", "upload"), [("empty", _empty), ("decompression bomb", _bomb)])
def test_an_empty_or_bomb_photo_is_refused_and_nothing_is_stored(dana, working, label, upload):
    before = audit_count()
    refused(
        act(dana, working, "photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": upload()}),
        400,
        "INVALID_EVIDENCE_FILE",
    )
    assert not Evidence.objects.filter(ticket=working).exists(), label
    assert stored_files(working) == [], label
    assert audit_count() == before


def test_a_photo_over_the_size_cap_is_refused_with_the_cap_and_nothing_is_stored(dana, working, settings):
    settings.DISPATCH_EVIDENCE_MAX_BYTES = 200
    body = refused(
        act(dana, working, "photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": jpeg()}),
        400,
        "INVALID_EVIDENCE_FILE",
    )
    assert body["message"] == "The file is larger than 200 bytes."
    assert not Evidence.objects.filter(ticket=working).exists()
    assert stored_files(working) == []


# --- routes, methods and idempotency keys --------------------------------------------------------


def test_an_unknown_action_is_not_found_and_changes_nothing(dana, working):
    before = audit_count()
    for slug in ("explode", "delete", "complete-now", "acknowledge2"):
        assert act(dana, working, slug, {"text": "x"}).status_code == 404
    assert audit_count() == before


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_opening_an_action_address_in_the_browser_is_method_not_allowed(dana, working, action):
    before = audit_count()
    answer = dana.get(reverse("field:act", args=[working.id, action]))
    assert answer.status_code == 405 and answer["Allow"] == "POST"
    assert audit_count() == before


def test_signing_out_needs_a_post(dana):
    assert dana.get(reverse("field:logout")).status_code == 405
    assert dana.get(reverse("field:jobs")).status_code == 200


@pytest.mark.parametrize("key", ["not-a-uuid", "x" * 5000, "' OR 1=1 --", "12345678-1234-5678-1234-56781234567Z"])
def test_a_forged_idempotency_key_is_refused_with_a_stable_code_and_nothing_is_saved(dana, working, key):
    before = audit_count()
    body = refused(act(dana, working, "note", {"text": "Shimmed strike"}, key=key), 400, "INVALID_IDEMPOTENCY_KEY")
    assert body["message"] == "The Idempotency-Key must be a UUID."
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_a_forged_key_in_a_form_posted_without_scripts_comes_back_as_a_message_on_the_job_page(dana, working):
    answer = dana.post(
        reverse("field:act", args=[working.id, "note"]), {"text": "Shimmed strike", "idempotency_key": "nope"}
    )
    assert answer.status_code == 302 and answer["Location"] == reverse("field:job", args=[working.id])
    page = dana.get(answer["Location"]).content.decode()
    assert "The Idempotency-Key must be a UUID." in page
    assert not Evidence.objects.filter(ticket=working).exists()


def test_one_key_written_in_another_uuid_spelling_is_still_one_post(dana, working):
    spellings = [
        "12345678-1234-5678-1234-567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
    ]
    for key in spellings:
        assert act(dana, working, "note", {"text": "Shimmed strike"}, key=key).json() == {
            "ok": True,
            "message": "Note saved.",
        }
    assert Evidence.objects.filter(ticket=working).count() == 1


def test_reusing_a_key_with_a_different_note_is_refused_and_the_first_note_stands(dana, working):
    key = uuid.uuid4()
    assert act(dana, working, "note", {"text": "Shimmed strike"}, key=key).json()["ok"] is True
    after_first = audit_count()
    body = refused(
        act(dana, working, "note", {"text": "Replaced closer"}, key=key), 409, "IDEMPOTENCY_PAYLOAD_MISMATCH"
    )
    assert body["message"] == "Idempotency key reuse with a different payload."
    # The original post, retried, is still answered as delivered, without a second note.
    assert act(dana, working, "note", {"text": "Shimmed strike"}, key=key).json()["ok"] is True
    notes = Evidence.objects.filter(ticket=working)
    assert [item.metadata["text"] for item in notes] == ["Shimmed strike"]
    assert audit_count() == after_first


def test_reusing_a_key_for_different_minutes_logs_the_time_once(dana, working):
    key = uuid.uuid4()
    assert act(dana, working, "labor", {"minutes": "30"}, key=key).json()["ok"] is True
    refused(act(dana, working, "labor", {"minutes": "300"}, key=key), 409, "IDEMPOTENCY_PAYLOAD_MISMATCH")
    assert list(LaborEntry.objects.filter(ticket=working).values_list("minutes", flat=True)) == [30]


def test_a_replayed_photo_post_keeps_one_photo_and_one_audit_event(dana, working):
    key = uuid.uuid4()
    data = {"evidence_key": "photo_before_door_edge_and_strike"}
    first = act(dana, working, "photo", {**data, "file": jpeg()}, key=key)
    after_first = audit_count()
    again = act(dana, working, "photo", {**data, "file": jpeg()}, key=key)
    assert first.json() == again.json() == {"ok": True, "message": "Photo saved."}
    assert Evidence.objects.filter(ticket=working).count() == 1
    assert audit_count() == after_first


def test_reusing_a_photos_key_for_another_photo_is_refused_and_keeps_the_first(dana, working):
    key = uuid.uuid4()
    act(dana, working, "photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": jpeg()}, key=key)
    refused(
        act(
            dana,
            working,
            "photo",
            {"evidence_key": "photo_after_latched_alignment", "file": jpeg((0, 200, 0), name="after.jpg")},
            key=key,
        ),
        409,
        "IDEMPOTENCY_PAYLOAD_MISMATCH",
    )
    keys = list(Evidence.objects.filter(ticket=working).values_list("evidence_key", flat=True))
    assert keys == ["photo_before_door_edge_and_strike"]


# --- whose job, who is asking ---------------------------------------------------------------------


def test_another_technicians_job_is_not_found_for_every_action_the_thumbnail_and_the_state(dana):
    other = TechnicianFactory()
    theirs = ticket_in_progress(technician=other)
    photo = evidence_add(
        actor=actor_for("dispatcher"), ticket_id=theirs.id, kind="PHOTO", upload=jpeg(), evidence_key="x"
    ).result
    PriceBookItemFactory(sku="STRIKE-01")
    labor = labor_add(actor=actor_for("dispatcher"), ticket_id=theirs.id, minutes=10).result
    before = audit_count()
    not_found = dana.get(reverse("field:job", args=[uuid.uuid4()]))
    assert not_found.status_code == 404
    data = {
        "text": "x",
        "minutes": "5",
        "reason": "r",
        "sku": "STRIKE-01",
        "approval_type": "PROPOSAL",
        "labor_entry_id": str(labor.id),
        "key": ["work_performed"],
        "done": ["work_performed"],
        "evidence_key": "photo_before_door_edge_and_strike",
    }
    for action in ACTIONS:
        if action in ("photo", "signature"):
            data = {**data, "file": jpeg(), "signer_name": "Pat"}
        answer = act(dana, theirs, action, data)
        # The same page as for a job that does not exist: nothing says the job is there.
        assert (answer.status_code, answer.content) == (404, not_found.content), action
        # Naming the technician whose job it is changes nothing for a technician.
        answer = act(dana, theirs, action, {**data, "as": str(other.id)})
        assert answer.status_code == 404, action
    for url in (
        reverse("field:job", args=[theirs.id]),
        reverse("field:job", args=[theirs.id]) + f"?as={other.id}",
        reverse("field:job_state", args=[theirs.id]),
        reverse("field:thumbnail", args=[theirs.id, photo.id]),
    ):
        answer = dana.get(url)
        assert (answer.status_code, answer.content) == (404, not_found.content), url
    assert audit_count() == before
    labor.refresh_from_db()
    assert labor.minutes == 10
    assert Ticket.objects.get(pk=theirs.pk).state == "IN_PROGRESS"


def test_a_technician_cannot_see_another_technicians_day_by_naming_them(dana):
    other = TechnicianFactory(display_name="Zed Other")
    theirs = ticket_dispatched(technician=other)
    page = dana.get(reverse("field:jobs") + f"?as={other.id}").content.decode()
    assert str(theirs.id) not in page and "read-only" not in page and "Zed Other" not in page


def test_a_thumbnail_of_another_job_asked_for_through_my_own_job_is_not_found(dana, working):
    theirs = ticket_in_progress(technician=TechnicianFactory())
    photo = evidence_add(
        actor=actor_for("dispatcher"), ticket_id=theirs.id, kind="PHOTO", upload=jpeg(), evidence_key="x"
    ).result
    assert dana.get(reverse("field:thumbnail", args=[working.id, photo.id])).status_code == 404
    assert dana.get(reverse("field:thumbnail", args=[working.id, "not-a-uuid"])).status_code == 404


def test_a_note_has_no_thumbnail_to_open(dana, working):
    act(dana, working, "note", {"text": "Shimmed strike"})
    note = Evidence.objects.get(ticket=working)
    assert dana.get(reverse("field:thumbnail", args=[working.id, note.id])).status_code == 404


def test_correcting_a_labor_entry_of_another_job_is_not_found_and_leaves_it_alone(dana, working):
    theirs = ticket_in_progress(technician=TechnicianFactory())
    entry = labor_add(actor=actor_for("dispatcher"), ticket_id=theirs.id, minutes=10, description="Theirs").result
    before = audit_count()
    body = refused(
        act(dana, working, "labor-edit", {"labor_entry_id": str(entry.id), "minutes": "999"}),
        404,
        "LABOR_ENTRY_NOT_FOUND",
    )
    assert body["message"] == f"No labor entry {entry.id} on this ticket."
    entry.refresh_from_db()
    assert (entry.minutes, entry.description) == (10, "Theirs")
    assert audit_count() == before


@pytest.mark.parametrize("labor_entry_id", ["", "abc", "-1", "0", "99999999999999999999999", "1.0"])
def test_correcting_a_labor_entry_that_does_not_exist_is_not_found(dana, working, labor_entry_id):
    act(dana, working, "labor", {"minutes": "30"})
    before = audit_count()
    refused(
        act(dana, working, "labor-edit", {"labor_entry_id": labor_entry_id, "minutes": "10"}),
        404,
        "LABOR_ENTRY_NOT_FOUND",
    )
    assert list(LaborEntry.objects.filter(ticket=working).values_list("minutes", flat=True)) == [30]
    assert audit_count() == before


@pytest.mark.parametrize(
    "view_as", ["bogus", pytest.param(str(uuid.uuid4()), id="a-random-uuid"), "' OR 1=1 --", "<script>"]
)
def test_a_dispatcher_naming_no_real_technician_gets_the_picker_and_can_change_nothing(technician, working, view_as):
    desk = signed_in(UserFactory(role="dispatcher"))
    picker = desk.get(reverse("field:jobs"), {"as": view_as})
    assert picker.status_code == 200
    assert next(t.name for t in picker.templates) == "field/pick_technician.html"
    assert "Dana Reyes" in picker.content.decode() and "<script>" not in picker.content.decode()
    assert desk.get(reverse("field:finished"), {"as": view_as})["Location"] == reverse("field:jobs")
    before = audit_count()
    answer = desk.post(
        reverse("field:act", args=[working.id, "note"]), {"as": view_as, "text": "x"}, HTTP_X_FIELD_FETCH="1"
    )
    refused(answer, 403, "READ_ONLY_VIEW")
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_a_deactivated_user_is_sent_back_to_sign_in_and_cannot_sign_in_again(technician, dana, working):
    technician.user.is_active = False
    technician.user.save()
    before = audit_count()
    assert dana.get(reverse("field:jobs"))["Location"].startswith(reverse("field:login"))
    # The page script keeps a queued post that meets a closed session, and says so.
    refused(act(dana, working, "note", {"text": "x"}), 401, "SIGNED_OUT")
    plain = act(dana, working, "note", {"text": "x"}, fetch=False)
    assert plain.status_code == 302 and plain["Location"].startswith(reverse("field:login"))
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before
    again = Client().post(reverse("field:login"), {"username": technician.user.username, "password": PASSWORD})
    assert again.status_code == 200 and b"didn't match" in again.content


def test_a_signed_in_technician_whose_technician_record_is_inactive_is_turned_away(technician, dana, working):
    Technician.objects.filter(pk=technician.pk).update(is_active=False)
    before = audit_count()
    page = dana.get(reverse("field:jobs"))
    assert page.status_code == 403 and b"These pages are for technicians" in page.content
    assert dana.get(reverse("field:job", args=[working.id])).status_code == 403
    refused(act(dana, working, "note", {"text": "x"}), 403, "NOT_A_TECHNICIAN")
    plain = act(dana, working, "note", {"text": "x"}, fetch=False)
    assert plain.status_code == 403 and b"These pages are for technicians" in plain.content
    assert not Evidence.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_a_technician_who_is_also_a_dispatcher_gets_the_read_only_view_and_changes_nothing():
    both = TechnicianFactory(display_name="Sam Both")
    both.user.groups.add(Group.objects.get(name="dispatcher"))
    client = signed_in(both.user)
    ticket = ticket_in_progress(technician=both)
    page = client.get(reverse("field:jobs"))
    assert next(t.name for t in page.templates) == "field/pick_technician.html"
    before = audit_count()
    refused(act(client, ticket, "note", {"text": "x"}), 403, "READ_ONLY_VIEW")
    assert not Evidence.objects.filter(ticket=ticket).exists()
    assert audit_count() == before


# --- a finished job, a checklist that is not the job's ------------------------------------------


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("acknowledge", {}),
        ("depart", {}),
        ("check-in", {}),
        ("pause", {"reason": "r"}),
        ("resume", {}),
        ("request-change", {"reason": "r", "approval_type": "PROPOSAL"}),
        ("checklist", {"key": ["work_performed"], "done": ["work_performed"]}),
        ("complete", {}),
        ("note", {"text": "A late note"}),
        ("photo", {"evidence_key": "other", "file": None}),
        ("no-signature", {"no_signature_reason": "Left already"}),
        ("labor", {"minutes": "30"}),
        ("part", {"sku": "STRIKE-01", "quantity": "1"}),
    ],
)
def test_a_finished_job_is_read_only_on_the_phone(technician, dana, action, data):
    done = ticket_at("COMPLETED_PENDING_VERIFICATION", technician=technician)
    PriceBookItemFactory(sku="STRIKE-01")
    page = dana.get(reverse("field:job", args=[done.id])).content.decode()
    assert "Nothing more to do here." in page and "Complete job" not in page and "Save checklist" not in page
    before = audit_count()
    if "file" in data:
        data = {**data, "file": jpeg()}
    refused(act(dana, done, action, data), 409, "JOB_FINISHED")
    assert Ticket.objects.get(pk=done.pk).state == "COMPLETED_PENDING_VERIFICATION"
    assert not ChecklistResult.objects.filter(ticket=done).exists()
    assert not Evidence.objects.filter(ticket=done).exists()
    assert audit_count() == before


def test_checklist_keys_that_are_not_the_jobs_are_refused_by_name_and_nothing_is_saved(dana, working):
    before = audit_count()
    body = refused(
        act(dana, working, "checklist", {"key": ["bogus", "work_performed"], "done": ["bogus", "work_performed"]}),
        400,
        "INVALID_REQUEST",
    )
    assert body["message"] == "Not a checklist item of this job: bogus."
    assert not ChecklistResult.objects.filter(ticket=working).exists()
    assert audit_count() == before


def test_ticking_a_box_that_is_not_on_the_form_saves_only_the_forms_items(dana, working):
    act(dana, working, "checklist", {"key": ["work_performed"], "done": ["work_performed", "billing_authorization"]})
    saved = ChecklistResult.objects.get(ticket=working)
    assert saved.checklist_status == {"work_performed": True}


# --- markup typed into the phone ------------------------------------------------------------------


def test_markup_typed_in_notes_time_photos_and_the_parts_search_is_shown_as_text(dana, working):
    act(dana, working, "note", {"text": MARKUP})
    act(dana, working, "labor", {"minutes": "5", "description": MARKUP})
    act(dana, working, "photo", {"evidence_key": MARKUP, "file": jpeg()})
    page = dana.get(reverse("field:job", args=[working.id]), {"q": MARKUP}).content.decode()
    assert "<script>alert(1)" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
    # The note, the time entry (text and its correction form), the photo's caption and alt
    # text, and the search box and its "no match" line all show it escaped.
    assert page.count(ESCAPED) >= 6
    assert f'alt="{ESCAPED}"' in page


def test_markup_in_an_approval_reason_is_shown_as_text(dana, working):
    act(dana, working, "request-change", {"approval_type": "PROPOSAL", "reason": MARKUP})
    page = dana.get(reverse("field:job", args=[working.id])).content.decode()
    assert "<script>alert(1)" not in page
    assert ESCAPED in page


def test_a_signers_name_with_markup_is_kept_as_typed_and_never_put_on_the_page_raw(dana, working):
    png = io.BytesIO()
    Image.new("RGBA", (300, 120), (0, 0, 0, 0)).save(png, format="PNG")
    png.seek(0)
    png.name = "signature.png"
    assert act(dana, working, "signature", {"signer_name": MARKUP, "file": png}).json()["ok"] is True
    assert Evidence.objects.get(ticket=working, kind="SIGNATURE").metadata["signer_name"] == MARKUP
    page = dana.get(reverse("field:job", args=[working.id])).content.decode()
    assert "<script>alert(1)" not in page


def test_an_error_that_repeats_the_input_is_shown_escaped_on_the_job_page(dana, working):
    answer = act(dana, working, "labor-edit", {"labor_entry_id": MARKUP, "minutes": "5"}, fetch=False)
    assert answer.status_code == 302
    page = dana.get(answer["Location"]).content.decode()
    assert "<script>alert(1)" not in page
    assert "No labor entry &lt;script&gt;" in page


def test_a_technicians_name_with_markup_is_escaped_on_the_dispatchers_pages():
    tech = TechnicianFactory(display_name=MARKUP)
    desk = signed_in(UserFactory(role="dispatcher"))
    for url in (reverse("field:jobs"), reverse("field:jobs") + f"?as={tech.id}"):
        page = desk.get(url).content.decode()
        assert "<script>alert(1)" not in page and ESCAPED in page


# --- the sign-in page's `next` ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "http://testserver.evil.example/tech/",
    ],
)
def test_signing_in_never_sends_the_technician_off_site(technician, target):
    client = Client()
    form = client.get(reverse("field:login"), {"next": target}).content.decode()
    assert re.search(r'name="next" value=""', form)
    answer = client.post(
        reverse("field:login") + "?" + "next=" + target,
        {"username": technician.user.username, "password": PASSWORD, "next": target},
    )
    assert answer.status_code == 302 and answer["Location"] == reverse("field:jobs")
    # Already signed in: the sign-in page sends them home, not to the other site.
    assert client.get(reverse("field:login"), {"next": target})["Location"] == reverse("field:jobs")


def test_signing_in_follows_a_next_inside_the_site(technician):
    answer = Client().post(
        reverse("field:login"),
        {"username": technician.user.username, "password": PASSWORD, "next": reverse("field:finished")},
    )
    assert answer["Location"] == reverse("field:finished")


# --- defects found by this sweep, now refused or handled ----------------------------------------


@pytest.mark.parametrize("accuracy", ["nan", "inf", "1e400", "-5", "200000"])
def test_a_check_in_with_an_impossible_accuracy_is_refused_and_nothing_happens(technician, dana, accuracy):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    before = audit_count()
    refused(
        act(dana, ticket, "check-in", {"lat": "37.8", "lng": "-122.2", "accuracy": accuracy}), 400, "INVALID_REQUEST"
    )
    assert Ticket.objects.get(pk=ticket.pk).state == "DISPATCHED"
    assert audit_count() == before


def test_a_check_in_location_the_database_cannot_store_is_refused_by_the_service(technician):
    from dispatch.common.errors import DispatchError
    from dispatch.scheduling.services import tech_check_in

    ticket = ticket_dispatched(technician=technician, **window_soon())
    for location in ({"lat": 37.8, "lng": float("nan")}, {"lat": 37.8, "note": "x" * 3000}):
        with pytest.raises(DispatchError) as refusal:
            tech_check_in(
                actor=actor_for("technician", technician=technician),
                ticket_id=ticket.id,
                timestamp="2030-01-01T10:00:00Z",
                location=location,
            )
        assert refusal.value.code == "INVALID_REQUEST"
    assert Ticket.objects.get(pk=ticket.pk).state == "DISPATCHED"


def test_a_part_quantity_of_nan_is_refused(dana, working):
    PriceBookItemFactory(sku="STRIKE-01")
    refused(act(dana, working, "part", {"sku": "STRIKE-01", "quantity": "NaN"}), 400, "INVALID_REQUEST")
    assert not PartUsage.objects.filter(ticket=working).exists()


@pytest.mark.parametrize("entry_id", ["²", "9" * 5000, "١٢"])
def test_a_labor_entry_id_that_is_no_plain_number_is_not_found(dana, working, entry_id):
    act(dana, working, "labor", {"minutes": "30"})
    refused(
        act(dana, working, "labor-edit", {"labor_entry_id": entry_id, "minutes": "10"}), 404, "LABOR_ENTRY_NOT_FOUND"
    )
    assert LaborEntry.objects.get(ticket=working).minutes == 30


def test_the_sign_in_page_sends_a_signed_in_technician_to_their_jobs(dana):
    answer = dana.get(reverse("field:login") + "?next=/tech/login/")
    assert answer.status_code == 302 and answer["Location"] == reverse("field:jobs")


def test_a_replayed_photo_post_stores_the_file_once(dana, working):
    key = uuid.uuid4()
    first = act(dana, working, "photo", {"evidence_key": "other", "file": jpeg()}, key=key)
    again = act(dana, working, "photo", {"evidence_key": "other", "file": jpeg()}, key=key)
    assert first.status_code == again.status_code == 200
    assert Evidence.objects.filter(ticket=working).count() == 1
    stored = default_storage.listdir(f"evidence/{working.id}")[1]
    assert len(stored) == 2  # the photo and its thumbnail, once


def test_several_photos_sent_without_scripts_are_each_saved(dana, working):
    answer = act(
        dana,
        working,
        "photo",
        {
            "evidence_key": "other",
            "file": [jpeg(name="a.jpg"), jpeg((1, 2, 3), name="b.jpg"), jpeg((9, 9, 9), name="c.jpg")],
        },
        fetch=False,
    )
    assert answer.status_code == 302
    assert Evidence.objects.filter(ticket=working, kind="PHOTO").count() == 3


def test_fields_an_action_does_not_read_are_neither_used_nor_recorded(dana, working):
    act(dana, working, "note", {"text": "Checked the strike", "junk": "j" * 2_000_000})
    event = AuditEvent.objects.filter(ticket=working).latest("seq")
    assert "junk" not in event.payload["request"]
    assert len(str(event.payload)) < 5_000


def test_an_approval_reason_longer_than_two_thousand_characters_is_refused(dana, working):
    refused(
        act(dana, working, "request-change", {"approval_type": "PROPOSAL", "reason": "r" * 2001}),
        400,
        "INVALID_REQUEST",
    )
    assert Ticket.objects.get(pk=working.pk).state == "IN_PROGRESS"


def test_a_pdf_cannot_stand_for_a_photo_or_a_signature(dana, working):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    for action, data in (("photo", {"evidence_key": "other"}), ("signature", {"signer_name": "Pat"})):
        upload = io.BytesIO(pdf)
        upload.name = "scan.pdf"
        refused(act(dana, working, action, {**data, "file": upload}), 400, "INVALID_EVIDENCE_FILE")
    assert not Evidence.objects.filter(ticket=working).exists()


def test_a_note_cannot_stand_for_a_photo_and_a_photo_not_for_a_note(dana, working):
    refused(
        act(dana, working, "note", {"evidence_key": "photo_after_latched_alignment", "text": "x"}),
        400,
        "EVIDENCE_KIND_MISMATCH",
    )
    refused(
        act(dana, working, "note", {"evidence_key": "signature_or_no_signature_reason", "text": "x"}),
        400,
        "EVIDENCE_KIND_MISMATCH",
    )
    refused(
        act(dana, working, "photo", {"evidence_key": "note_adjustments_and_test_cycles", "file": jpeg()}),
        400,
        "INVALID_REQUEST",
    )
    assert not Evidence.objects.filter(ticket=working).exists()


def test_a_check_in_pressed_before_the_dispatch_counts_from_the_dispatch(technician, dana, dispatched):
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.tickets.models import StateTransition

    dispatched_at = StateTransition.objects.filter(ticket=dispatched, to_state="DISPATCHED").latest("seq").created_at
    pressed = (dispatched_at - timedelta(hours=3)).isoformat()
    assert act(dana, dispatched, "check-in", {"pressed_at": pressed}).status_code == 200
    assert CheckIn.objects.get(ticket=dispatched).arrived_at == dispatched_at
    assert dispatched_at <= timezone.now()


def test_several_photos_without_scripts_are_all_or_nothing_files_included(dana, working):
    bad = io.BytesIO(b"not a photo at all")
    bad.name = "c.jpg"
    answer = act(
        dana,
        working,
        "photo",
        {"evidence_key": "other", "file": [jpeg(name="a.jpg"), jpeg((1, 2, 3), name="b.jpg"), bad]},
    )
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_EVIDENCE_FILE"
    assert not Evidence.objects.filter(ticket=working).exists()
    folder = f"evidence/{working.id}"
    assert not default_storage.exists(folder) or default_storage.listdir(folder) == ([], [])
