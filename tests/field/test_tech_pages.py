"""The technician's pages at /tech/, driven through Django's test client: who gets in, what a
technician sees, and every button going through the same services as the toolset, once."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from dispatch.closeout.models import Evidence, LaborEntry, PartUsage
from dispatch.tickets.models import AuditEvent, Ticket
from tests.factories import (
    DOOR_CHECKLIST,
    PriceBookItemFactory,
    TechnicianFactory,
    UserFactory,
    ticket_dispatched,
    ticket_scheduled,
    window_at,
    window_soon,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def signed_in(user) -> Client:
    client = Client()
    # Through the sign-in page, as a phone signs in (the lockout check needs the request).
    answer = client.post("/tech/login/", {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 302, answer.status_code
    return client


def jpeg(color=(200, 30, 30)) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format="JPEG")
    buffer.seek(0)
    buffer.name = "door.jpg"
    return buffer


def png_signature() -> io.BytesIO:
    buffer = io.BytesIO()
    image = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    for x in range(20, 280):
        image.putpixel((x, 60 + (x % 20) - 10), (16, 32, 47, 255))
    image.save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "signature.png"
    return buffer


def act(client, ticket, action, data=None, *, key=None, fetch=True):
    headers = {"HTTP_IDEMPOTENCY_KEY": str(key or uuid.uuid4())}
    if fetch:
        headers["HTTP_X_FIELD_FETCH"] = "1"
    return client.post(reverse("field:act", args=[ticket.id, action]), data or {}, **headers)


def events(ticket) -> list[str]:
    return list(AuditEvent.objects.filter(ticket=ticket).order_by("seq").values_list("tool_name", flat=True))


@pytest.fixture
def technician():
    return TechnicianFactory(display_name="Dana Reyes")


@pytest.fixture
def dana(technician):
    return signed_in(technician.user)


# --- who gets in --------------------------------------------------------------------------------


def test_signing_in_keeps_a_technician_signed_in_on_the_phone_for_thirty_days(technician):
    client = Client()
    page = client.get(reverse("field:login"))
    assert page.status_code == 200 and b"Technician sign-in" in page.content
    answer = client.post(reverse("field:login"), {"username": technician.user.username, "password": PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == reverse("field:jobs")
    assert 29 * 86400 < client.session.get_expiry_age() <= 30 * 86400
    assert client.get(reverse("field:jobs")).status_code == 200

    client.post(reverse("field:logout"))
    assert client.get(reverse("field:jobs"))["Location"].startswith(reverse("field:login"))


def test_a_wrong_password_is_refused_on_the_sign_in_page(technician):
    answer = Client().post(reverse("field:login"), {"username": technician.user.username, "password": "nope"})
    assert answer.status_code == 200
    assert b"didn't match" in answer.content


@pytest.mark.parametrize("role", ["agent", "customer", "finance"])
def test_someone_who_is_not_a_technician_gets_a_clear_refusal(role):
    user = UserFactory(role=role)
    answer = signed_in(user).get(reverse("field:jobs"))
    assert answer.status_code == 403
    assert b"These pages are for technicians" in answer.content


# --- my jobs ------------------------------------------------------------------------------------


def test_my_jobs_lists_my_upcoming_jobs_emergencies_first_and_not_anyone_elses(technician, dana):
    start, end = window_at(days=1, hour=13)
    routine = ticket_dispatched(technician=technician, start=start, end=end, summary="Sticky latch")
    emergency = ticket_dispatched(technician=technician, summary="Door won't lock")
    Ticket.objects.filter(pk=emergency.pk).update(priority="EMERGENCY")
    other = ticket_dispatched(technician=TechnicianFactory(), summary="Someone else's door")

    page = dana.get(reverse("field:jobs")).content.decode()
    assert str(routine.id) in page and str(emergency.id) in page
    assert str(other.id) not in page
    assert "Emergency" in page
    # Both are tomorrow; the emergency comes first within the day.
    assert page.index(str(emergency.id)) < page.index(str(routine.id))
    # What is still missing to finish is on each card.
    assert "To finish: 2 photos · 1 note · signature or reason · 5 checklist items" in page


def test_a_job_booked_to_me_but_not_dispatched_opens_with_nothing_to_do_yet(technician, dana):
    start, end = window_at(days=2, hour=10)
    booked = ticket_scheduled(technician=technician, start=start, end=end, summary="Lobby slider noise")
    page = dana.get(reverse("field:jobs")).content.decode()
    assert "Booked for you · not dispatched yet" in page
    assert reverse("field:job", args=[booked.id]) in page
    # The same rule as the toolset's policy: the technician reads their booked job (address,
    # access notes) before the day, and can act on it only once it is dispatched.
    job = dana.get(reverse("field:job", args=[booked.id]))
    assert job.status_code == 200
    assert ">Check in</button>" not in job.content.decode()


def test_an_empty_week_says_so(dana):
    page = dana.get(reverse("field:jobs")).content.decode()
    assert "Nothing booked" in page


def test_the_jobs_list_costs_the_same_queries_for_three_jobs_or_eight(technician, dana, django_assert_max_num_queries):
    def book(hour):
        start, end = window_at(days=1 + hour // 6, hour=8 + 2 * (hour % 6), hours=1)
        ticket_dispatched(technician=technician, start=start, end=end)

    for hour in range(3):
        book(hour)
    with django_assert_max_num_queries(20) as three:
        dana.get(reverse("field:jobs"))
    for hour in range(3, 8):
        book(hour)
    with django_assert_max_num_queries(len(three.captured_queries)):
        dana.get(reverse("field:jobs"))


# --- least privilege ----------------------------------------------------------------------------


def test_another_technicians_job_is_not_found_on_get_and_post(dana):
    theirs = ticket_dispatched(technician=TechnicianFactory())
    assert dana.get(reverse("field:job", args=[theirs.id])).status_code == 404
    assert act(dana, theirs, "acknowledge").status_code == 404
    assert dana.get(reverse("field:job", args=["not-a-uuid"])).status_code == 404
    assert events(theirs)[-1] == "assignment.dispatch"


def test_a_post_without_the_csrf_token_is_refused(technician):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    client = Client(enforce_csrf_checks=True)
    client.force_login(technician.user)
    assert act(client, ticket, "acknowledge").status_code == 403
    assert "tech.acknowledge" not in events(ticket)


def test_a_dispatcher_sees_a_technicians_day_read_only(technician):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    desk = signed_in(UserFactory(role="dispatcher"))
    picker = desk.get(reverse("field:jobs")).content.decode()
    assert "Dana Reyes" in picker
    day = desk.get(reverse("field:jobs") + f"?as={technician.id}").content.decode()
    assert str(ticket.id) in day and "read-only" in day
    job = desk.get(reverse("field:job", args=[ticket.id]) + f"?as={technician.id}").content.decode()
    assert "Acknowledge job" not in job
    refused = desk.post(
        reverse("field:act", args=[ticket.id, "acknowledge"]), {"as": str(technician.id)}, HTTP_X_FIELD_FETCH="1"
    )
    assert refused.status_code == 403 and refused.json()["code"] == "READ_ONLY_VIEW"
    assert "tech.acknowledge" not in events(ticket)


# --- a whole job -------------------------------------------------------------------------------


def test_a_technician_does_a_whole_job_from_the_phone_one_audit_event_per_action(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    PriceBookItemFactory(sku="STRIKE-01", name="Strike plate, brass")
    before = len(events(ticket))
    page = dana.get(reverse("field:job", args=[ticket.id])).content.decode()
    assert "Acknowledge job" in page and "On my way" in page and "Check in" in page

    steps = [
        ("acknowledge", {}),
        ("depart", {"lat": "37.80", "lng": "-122.27", "accuracy": "12"}),
        ("check-in", {"lat": "37.81", "lng": "-122.26", "accuracy": "8"}),
        ("photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": jpeg()}),
        ("photo", {"evidence_key": "photo_after_latched_alignment", "file": jpeg((30, 200, 30))}),
        ("note", {"evidence_key": "note_adjustments_and_test_cycles", "text": "Shimmed strike 2 mm; 20 cycles."}),
        ("checklist", {"key": list(DOOR_CHECKLIST), "done": list(DOOR_CHECKLIST)}),
        ("labor", {"minutes": "45", "description": "Adjust strike"}),
        ("part", {"sku": "STRIKE-01", "quantity": "1"}),
        ("signature", {"signer_name": "Pat Rivera", "file": png_signature()}),
        ("complete", {}),
    ]
    for action, data in steps:
        answer = act(dana, ticket, action, data)
        assert answer.status_code == 200, (action, answer.content)
        assert answer.json()["ok"] is True

    ticket.refresh_from_db()
    assert ticket.state == "COMPLETED_PENDING_VERIFICATION"
    tools = events(ticket)[before:]
    assert tools == [
        "tech.acknowledge",
        "tech.depart",
        "tech.check_in",
        "closeout.add_evidence",
        "closeout.add_evidence",
        "closeout.add_evidence",
        "closeout.save_checklist",
        "closeout.add_labor",
        "closeout.add_part",
        "closeout.add_evidence",
        "tech.complete",
    ]
    actors = set(AuditEvent.objects.filter(ticket=ticket, seq__gt=before).values_list("actor_id", "actor_role"))
    assert actors == {(str(technician.user_id), "technician")}
    assert LaborEntry.objects.get(ticket=ticket).minutes == 45
    assert PartUsage.objects.get(ticket=ticket).price_book_item.sku == "STRIKE-01"
    signature = Evidence.objects.get(ticket=ticket, kind="SIGNATURE")
    assert signature.metadata["signer_name"] == "Pat Rivera" and signature.content_type == "image/png"

    done = dana.get(reverse("field:job", args=[ticket.id])).content.decode()
    assert "Done" in done and "Complete job" not in done and "Save note" not in done


def test_a_retried_post_with_the_same_key_has_one_effect(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    key = uuid.uuid4()
    first = act(dana, ticket, "acknowledge", key=key)
    again = act(dana, ticket, "acknowledge", key=key)
    assert first.status_code == again.status_code == 200
    assert events(ticket).count("tech.acknowledge") == 1


def test_completion_refused_lists_exactly_what_is_missing_with_links(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")
    act(dana, ticket, "photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": jpeg()})

    refused = act(dana, ticket, "complete")
    assert refused.status_code == 409
    missing = {item["key"]: item["anchor"] for item in refused.json()["missing"]}
    assert missing["photo_after_latched_alignment"] == "photos"
    assert missing["note_adjustments_and_test_cycles"] == "notes"
    assert missing["signature_or_no_signature_reason"] == "signature"
    assert missing["work_performed"] == "checklist"
    assert "photo_before_door_edge_and_strike" not in missing

    # Without scripts: back to the job page, which lists the same items as links.
    plain = act(dana, ticket, "complete", fetch=False)
    assert plain.status_code == 302
    page = dana.get(plain["Location"]).content.decode()
    assert "still missing" in page and 'href="#signature"' in page and "Photo after latched alignment" in page
    assert Ticket.objects.get(pk=ticket.pk).state == "IN_PROGRESS"


def test_a_technician_pauses_and_resumes_and_asks_for_more_money(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")
    assert act(dana, ticket, "pause", {"reason": "Waiting for a part"}).status_code == 200
    assert Ticket.objects.get(pk=ticket.pk).state == "ON_HOLD"
    page = dana.get(reverse("field:job", args=[ticket.id])).content.decode()
    assert "Resume work" in page and "Complete job" not in page
    assert act(dana, ticket, "resume").status_code == 200
    asked = act(
        dana, ticket, "request-change", {"approval_type": "NTE_INCREASE", "amount": "150.00", "reason": "New closer"}
    )
    assert asked.status_code == 200
    ticket.refresh_from_db()
    assert ticket.state == "APPROVAL_REQUIRED"
    page = dana.get(reverse("field:job", args=[ticket.id])).content.decode()
    assert "Pending" in page and "+$150.00" in page and "Waiting for a decision" in page


def test_an_action_the_state_does_not_allow_is_refused_and_changes_nothing(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    answer = act(dana, ticket, "complete")
    assert answer.status_code == 409
    assert answer.json()["ok"] is False
    assert Ticket.objects.get(pk=ticket.pk).state == "DISPATCHED"


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("script.jpg", b"<html><script>alert(1)</script></html>"),
        ("door.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    ],
)
def test_a_hostile_upload_is_refused_and_nothing_is_stored(technician, dana, name, payload):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")
    upload = io.BytesIO(payload)
    upload.name = name
    answer = act(dana, ticket, "photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": upload})
    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_EVIDENCE_FILE"
    assert not Evidence.objects.filter(ticket=ticket).exists()
    folder = f"evidence/{ticket.id}"
    assert not default_storage.exists(folder) or default_storage.listdir(folder) == ([], [])


def test_a_photo_gets_a_thumbnail_only_its_technician_can_open(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")
    act(dana, ticket, "photo", {"evidence_key": "photo_before_door_edge_and_strike", "file": jpeg()})
    item = Evidence.objects.get(ticket=ticket)
    url = reverse("field:thumbnail", args=[ticket.id, item.id])
    thumb = dana.get(url)
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert signed_in(TechnicianFactory().user).get(url).status_code == 404
    assert url in dana.get(reverse("field:job", args=[ticket.id])).content.decode()


def test_the_service_worker_is_served_from_the_technician_folder(dana):
    answer = Client().get(reverse("field:service_worker"))
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/javascript")
    assert b'"/tech/offline/"' in answer.content


def test_the_parts_search_finds_by_name_or_sku_and_adds_from_the_price_book(technician, dana):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")
    PriceBookItemFactory(sku="CLOSER-4040", name="Door closer, heavy duty")
    PriceBookItemFactory(sku="HINGE-45", name="Hinge set")
    job = reverse("field:job", args=[ticket.id])
    by_name = dana.get(job + "?q=closer").content.decode()
    assert "CLOSER-4040" in by_name and "HINGE-45" not in by_name
    by_sku = dana.get(job + "?q=hinge-").content.decode()
    assert "HINGE-45" in by_sku and "CLOSER-4040" not in by_sku
    assert "No part matches" in dana.get(job + "?q=zzz").content.decode()
    assert act(dana, ticket, "part", {"sku": "HINGE-45", "quantity": "2"}).status_code == 200
    assert act(dana, ticket, "part", {"sku": "NOPE-1", "quantity": "1"}).json()["code"] == "PRICE_BOOK_ITEM_NOT_FOUND"
    assert [(p.price_book_item.sku, p.quantity) for p in PartUsage.objects.filter(ticket=ticket)] == [("HINGE-45", 2)]


def test_only_a_technician_stays_signed_in_for_thirty_days(settings):
    # A dispatcher signing in on the technician's page keeps the back office's idle limit.
    desk = UserFactory(role="dispatcher")
    client = Client()
    client.post(reverse("field:login"), {"username": desk.username, "password": PASSWORD})
    assert client.session.get_expiry_age() == settings.DISPATCH_STAFF_IDLE_HOURS * 3600 < 30 * 24 * 3600


def test_a_hold_dispatch_put_on_is_not_offered_to_the_technician_to_resume(technician, dana):
    from dispatch.tickets.services import ticket_force_hold
    from tests.factories import actor_for

    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")
    ticket_force_hold(actor=actor_for("dispatcher"), ticket_id=ticket.id, reason="Customer asked to wait")
    page = dana.get(reverse("field:job", args=[ticket.id])).content.decode()
    assert "Resume work" not in page and "Dispatch put this job on hold" in page
    assert act(dana, ticket, "resume").json()["code"] == "HOLD_SET_BY_DISPATCH"


def test_an_on_my_way_that_waited_offline_is_not_sent_to_the_customer_late(technician, dana):
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.scheduling.models import Departure

    ticket = ticket_dispatched(technician=technician, **window_soon())
    pressed = (timezone.now() - timedelta(minutes=25)).isoformat()
    refused = act(dana, ticket, "depart", {"pressed_at": pressed})
    assert refused.status_code == 409 and refused.json()["code"] == "DEPARTURE_TOO_OLD"
    assert not Departure.objects.filter(ticket=ticket).exists()
    # Pressed a moment ago (a short outage): the customer hears it.
    assert act(dana, ticket, "depart", {"pressed_at": timezone.now().isoformat()}).status_code == 200
    assert Departure.objects.filter(ticket=ticket).count() == 1


def test_a_job_page_costs_the_same_queries_with_three_photos_or_twelve(technician, dana, django_assert_max_num_queries):
    ticket = ticket_dispatched(technician=technician, **window_soon())
    act(dana, ticket, "check-in")

    def log(count):
        for index in range(count):
            act(dana, ticket, "photo", {"evidence_key": "other", "file": jpeg((index, 40, 90))})
            act(dana, ticket, "labor", {"minutes": "10"})

    log(3)
    with django_assert_max_num_queries(40) as three:
        dana.get(reverse("field:job", args=[ticket.id]))
    # Counted now: the next requests empty the connection's query log the count is read from.
    with_three = len(three)
    log(9)
    with django_assert_max_num_queries(with_three):
        dana.get(reverse("field:job", args=[ticket.id]))
