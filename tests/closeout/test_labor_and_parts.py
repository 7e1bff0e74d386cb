"""Labor and parts on a job: logged and corrected by the technician on it (services and toolset),
and read back for display with the amounts the invoice will charge."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from dispatch.closeout.models import LaborEntry, PartUsage
from dispatch.closeout.selectors import labor_and_parts, price_book_search
from dispatch.closeout.services import labor_add, labor_update, part_add
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.models import AuditEvent
from tests.factories import PriceBookItemFactory, TechnicianFactory, actor_for, jwt_for, ticket_at

pytestmark = pytest.mark.django_db


def refusal(call) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        call()
    return caught.value


def post(client, technician, path: str, body: dict):
    return client.post(
        f"/api/v1{path}",
        data=body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {jwt_for(technician.user.username, 'technician')}",
    )


# --- labor_update -------------------------------------------------------------------------------


def test_a_technician_corrects_their_labor_and_the_audit_keeps_old_and_new(job, tech_actor):
    entry = labor_add(actor=tech_actor, ticket_id=job.id, minutes=30, description="Adjust closer").result
    outcome = labor_update(actor=tech_actor, ticket_id=job.id, labor_entry_id=entry.id, minutes=45)
    entry.refresh_from_db()
    assert (entry.minutes, entry.description) == (45, "Adjust closer")
    assert outcome.event.tool_name == "closeout.update_labor"
    assert outcome.event.payload["labor_entry_id"] == entry.id
    assert outcome.event.payload["changes"] == {"minutes": {"old": 30, "new": 45}}
    assert outcome.ticket.state == "IN_PROGRESS"


def test_a_correction_of_both_fields_records_both(job, tech_actor):
    entry = labor_add(actor=tech_actor, ticket_id=job.id, minutes=30, description="Adjust").result
    outcome = labor_update(
        actor=tech_actor, ticket_id=job.id, labor_entry_id=str(entry.id), minutes=50, description="Adjust and oil"
    )
    assert outcome.event.payload["changes"] == {
        "minutes": {"old": 30, "new": 50},
        "description": {"old": "Adjust", "new": "Adjust and oil"},
    }


def test_an_entry_of_another_ticket_is_not_found_and_nothing_changes(job, tech_actor, technician):
    other_job = ticket_at("IN_PROGRESS", technician=technician)
    theirs = labor_add(actor=tech_actor, ticket_id=other_job.id, minutes=30).result
    events = AuditEvent.objects.count()
    for entry_id in (theirs.id, 10**9, "not-a-number", None):
        error = refusal(
            lambda entry_id=entry_id: labor_update(
                actor=tech_actor, ticket_id=job.id, labor_entry_id=entry_id, minutes=45
            )
        )
        assert (error.code, error.status) == ("LABOR_ENTRY_NOT_FOUND", 404)
    theirs.refresh_from_db()
    assert theirs.minutes == 30
    assert AuditEvent.objects.count() == events


def test_bad_corrections_are_refused_before_anything_is_written(job, tech_actor):
    entry = labor_add(actor=tech_actor, ticket_id=job.id, minutes=30, description="Adjust").result
    events = AuditEvent.objects.count()
    for kwargs, field in (
        ({}, "minutes"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 1441}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"description": "x" * 301}, "description"),
        ({"minutes": 30, "description": "Adjust"}, "labor_entry_id"),
    ):
        error = refusal(
            lambda kwargs=kwargs: labor_update(actor=tech_actor, ticket_id=job.id, labor_entry_id=entry.id, **kwargs)
        )
        assert (error.code, error.status, error.details["field"]) == ("INVALID_REQUEST", 400, field), kwargs
    assert AuditEvent.objects.count() == events


def test_only_the_technician_on_the_job_or_dispatch_corrects_labor(job, tech_actor, dispatcher):
    entry = labor_add(actor=tech_actor, ticket_id=job.id, minutes=30).result
    stranger = actor_for(Role.TECHNICIAN, technician=TechnicianFactory())
    error = refusal(lambda: labor_update(actor=stranger, ticket_id=job.id, labor_entry_id=entry.id, minutes=45))
    assert (error.code, error.dimension) == ("FORBIDDEN_SCOPE", "assignment")
    finance = actor_for(Role.FINANCE)
    error = refusal(lambda: labor_update(actor=finance, ticket_id=job.id, labor_entry_id=entry.id, minutes=45))
    assert error.code == "TOOL_ROLE_FORBIDDEN"
    labor_update(actor=dispatcher, ticket_id=job.id, labor_entry_id=entry.id, minutes=40)
    entry.refresh_from_db()
    assert entry.minutes == 40


def test_labor_is_not_corrected_on_a_closed_job(technician, tech_actor):
    closed = ticket_at("CLOSED", technician=technician)
    entry = LaborEntry.objects.create(ticket=closed, technician=technician, minutes=30)
    error = refusal(lambda: labor_update(actor=tech_actor, ticket_id=closed.id, labor_entry_id=entry.id, minutes=45))
    assert error.code == "INVALID_STATE_TRANSITION"


# --- the selectors ------------------------------------------------------------------------------


def test_the_price_book_is_searched_by_name_or_sku_start_among_active_items():
    PriceBookItemFactory(sku="STRIKE-ASA", name="ASA strike plate", unit_cents=2450)
    PriceBookItemFactory(sku="CLOSER-4040", name="LCN 4040 door closer", unit_cents=18900)
    PriceBookItemFactory(sku="OLD-STRIKE", name="Old strike plate", unit_cents=100, active=False)
    PriceBookItemFactory(sku="X-STRIKE", name="Brass plate", unit_cents=900)

    assert [row["sku"] for row in price_book_search("strike")] == ["STRIKE-ASA"]
    assert [row["sku"] for row in price_book_search("PLATE")] == ["STRIKE-ASA", "X-STRIKE"]
    assert [row["sku"] for row in price_book_search("closer-40")] == ["CLOSER-4040"]
    assert price_book_search("4040")[0] == {
        "id": price_book_search("4040")[0]["id"],
        "sku": "CLOSER-4040",
        "name": "LCN 4040 door closer",
        "unit_cents": 18900,
        "taxable": True,
    }
    assert [row["sku"] for row in price_book_search("", limit=2)] == ["STRIKE-ASA", "X-STRIKE"]
    assert price_book_search("nothing like it") == []


def test_labor_and_parts_are_listed_with_the_amounts_the_invoice_will_charge(billing, job, tech_actor, technician):
    billing.standard_rate_cents = 12000
    billing.save()
    PriceBookItemFactory(sku="CLOSER-4040", name="LCN 4040 door closer", unit_cents=18900)
    labor_add(actor=tech_actor, ticket_id=job.id, minutes=45, description="Adjust closer")
    # A rate other than the company's is the office's to set.
    labor_add(actor=actor_for(Role.DISPATCHER), ticket_id=job.id, minutes=10, rate_cents=9000, description="Apprentice")
    part_add(actor=tech_actor, ticket_id=job.id, sku="CLOSER-4040", quantity=1)
    part_add(actor=tech_actor, ticket_id=job.id, description="Screws", unit_cents=15, quantity="3.5")

    listing = labor_and_parts(job)

    assert [(row["minutes"], row["rate_cents"], row["line_total_cents"]) for row in listing["labor"]] == [
        (45, 12000, 9000),
        (10, 9000, 1530),  # 10 minutes show as 0.17 h, and 0.17 h x $90 is what is billed
    ]
    assert listing["labor"][0]["technician_name"] == technician.display_name
    assert listing["labor"][0]["standard_rate"] and not listing["labor"][1]["standard_rate"]
    assert [
        (row["sku"], row["name"], row["description"], row["quantity"], row["unit_cents"], row["line_total_cents"])
        for row in listing["parts"]
    ] == [
        ("CLOSER-4040", "LCN 4040 door closer", "LCN 4040 door closer", "1.00", 18900, 18900),
        (None, None, "Screws", "3.50", 15, 53),
    ]
    assert (listing["labor_minutes"], listing["labor_cents"], listing["parts_cents"]) == (55, 10530, 18953)
    assert labor_and_parts(ticket_at("IN_PROGRESS")) == {
        "labor": [],
        "parts": [],
        "labor_minutes": 0,
        "labor_cents": 0,
        "parts_cents": 0,
    }


# --- the toolset --------------------------------------------------------------------------------


def test_a_technician_logs_and_corrects_labor_through_the_toolset(client, job, technician):
    added = post(client, technician, f"/tickets/{job.id}/closeout/labor", {"minutes": 30, "description": "Adjust"})
    assert added.status_code == 201, added.content
    entry = added.json()["labor_entry"]
    assert (entry["minutes"], entry["technician_id"]) == (30, str(technician.id))
    assert added.json()["ticket"]["id"] == str(job.id)

    updated = post(
        client, technician, f"/tickets/{job.id}/closeout/labor/update", {"labor_entry_id": entry["id"], "minutes": 45}
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["labor_entry"]["minutes"] == 45
    assert updated.json()["changes"] == {"minutes": {"old": 30, "new": 45}}
    assert LaborEntry.objects.get(pk=entry["id"]).minutes == 45


def test_a_technician_logs_parts_through_the_toolset(client, job, technician):
    PriceBookItemFactory(sku="STRIKE-ASA", name="ASA strike plate", unit_cents=2450)
    from_book = post(client, technician, f"/tickets/{job.id}/closeout/parts", {"sku": "STRIKE-ASA", "quantity": 2})
    assert from_book.status_code == 201, from_book.content
    assert from_book.json()["part_usage"]["sku"] == "STRIKE-ASA"
    own = post(client, technician, f"/tickets/{job.id}/closeout/parts", {"description": "Shims", "unit_cents": 120})
    assert own.status_code == 201, own.content
    assert [(u.quantity, u.unit_cents) for u in PartUsage.objects.filter(ticket=job)] == [
        (Decimal("2.00"), None),
        (Decimal("1.00"), 120),
    ]


@pytest.mark.parametrize(
    "path, body",
    [
        ("labor", {"minutes": 0}),
        ("labor", {"minutes": 1441}),
        ("labor", {"minutes": 30, "technician_id": str(uuid.uuid4())}),
        ("labor", {"minutes": 30, "description": "x" * 301}),
        ("labor/update", {"minutes": 30}),
        ("labor/update", {"labor_entry_id": 1, "rate_cents": 1}),
        ("parts", {"quantity": 0, "description": "Shims", "unit_cents": 1}),
        ("parts", {"quantity": 10001, "description": "Shims", "unit_cents": 1}),
        ("parts", {"sku": "A", "surprise": True}),
        ("parts", {"description": "Shims"}),
    ],
)
def test_the_toolset_refuses_what_its_schemas_or_the_services_refuse(client, job, technician, path, body):
    events = AuditEvent.objects.count()
    response = post(client, technician, f"/tickets/{job.id}/closeout/{path}", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert AuditEvent.objects.count() == events


def test_another_technician_cannot_log_labor_on_a_job_not_theirs(client, job):
    stranger = TechnicianFactory()
    response = post(client, stranger, f"/tickets/{job.id}/closeout/labor", {"minutes": 30})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN_SCOPE"
    assert not LaborEntry.objects.exists()


def test_a_technician_logs_only_their_own_time_at_the_companys_rate(job, tech_actor, technician, dispatcher):
    for extra in ({"rate_cents": 1_000_000}, {"technician_id": TechnicianFactory().id}):
        with pytest.raises(DispatchError) as refused:
            labor_add(actor=tech_actor, ticket_id=job.id, minutes=30, **extra)
        assert refused.value.code == "FIELD_NOT_ALLOWED_FOR_ROLE"
    # The office logs a helper's time on the same job: it is the helper's, not Dana's, to correct.
    helper = TechnicianFactory()
    office = labor_add(actor=dispatcher, ticket_id=job.id, minutes=20, rate_cents=9500, technician_id=helper.id).result
    with pytest.raises(DispatchError) as refused:
        labor_update(actor=tech_actor, ticket_id=job.id, labor_entry_id=office.id, minutes=200)
    assert refused.value.code == "LABOR_ENTRY_NOT_FOUND"
    own = labor_add(actor=tech_actor, ticket_id=job.id, minutes=30).result
    assert labor_update(actor=tech_actor, ticket_id=job.id, labor_entry_id=own.id, minutes=45).result.minutes == 45
    office.refresh_from_db()
    assert (office.minutes, office.rate_cents) == (20, 9500)
