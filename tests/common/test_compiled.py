"""Compiled queries and single-row writes give what the ORM gives, with SQL written once."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Upper
from django.db.models.signals import pre_save
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch.common.compiled import CompiledQuery, row_insert, row_update
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.tickets.commands import command
from dispatch.tickets.models import Account, AuditEvent, IdempotencyRecord, Ticket
from dispatch.tickets.services import ticket_execute
from tests.factories import AccountFactory, actor_for, ticket_new

pytestmark = pytest.mark.django_db

TICKET_WITH_SITE = CompiledQuery(lambda pk: Ticket.objects.select_related("site").filter(pk=pk), pk=uuid.UUID)


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_a_compiled_lookup_returns_the_instance_the_queryset_returns_with_its_site_in_one_query():
    ticket = ticket_new(summary="Door drags on the frame")
    expected = Ticket.objects.select_related("site").get(pk=ticket.pk)
    with CaptureQueriesContext(connection) as queries:
        (found,) = TICKET_WITH_SITE.objects(pk=ticket.pk)
        site_name = found.site.name
    assert len(queries) == 1
    assert _fields(found) == _fields(expected)
    assert site_name == expected.site.name and _fields(found.site) == _fields(expected.site)
    assert found._state.adding is False and found._state.db == "default"


def test_each_run_binds_its_own_values():
    first, second = ticket_new(summary="first"), ticket_new(summary="second")
    assert [t.summary for t in TICKET_WITH_SITE.objects(pk=first.pk)] == ["first"]
    assert [t.summary for t in TICKET_WITH_SITE.objects(pk=str(second.pk))] == ["second"]
    assert TICKET_WITH_SITE.objects(pk=uuid.uuid4()) == []


def test_annotations_and_value_rows_come_back_converted():
    ticket = ticket_new(summary="Annotated")
    annotated = CompiledQuery(
        lambda summary: Ticket.objects.filter(summary=summary).annotate(site_city=F("site__city")), summary=str
    )
    (found,) = annotated.objects(summary="Annotated")
    assert found.site_city == ticket.site.city
    values = CompiledQuery(
        lambda account: Ticket.objects.filter(account_id=account).values_list("id", "created_at", "version"),
        account=uuid.UUID,
    )
    (row,) = values.rows(account=ticket.account_id)
    assert row == (ticket.pk, Ticket.objects.get(pk=ticket.pk).created_at, 1)
    assert isinstance(row[0], uuid.UUID) and timezone.is_aware(row[1])


def test_a_value_that_appears_twice_is_bound_in_both_places():
    account = AccountFactory(name="Harbor Dental", billing_email="HARBOR@example.com")
    AccountFactory(name="Other", billing_email="x@example.com")
    either = CompiledQuery(
        lambda text: Account.objects.filter(name=text) | Account.objects.filter(billing_email=text), text=str
    )
    assert [a.pk for a in either.objects(text="Harbor Dental")] == [account.pk]
    assert [a.pk for a in either.objects(text="HARBOR@example.com")] == [account.pk]


def test_a_case_blind_match_through_upper_binds_the_value_verbatim():
    account = AccountFactory(billing_email="Front.Desk_1@Example.com")
    AccountFactory(billing_email="frontXdesk_1@example.com")
    by_email = CompiledQuery(
        lambda email: Account.objects.alias(email_upper=Upper("billing_email")).filter(email_upper=Upper(Value(email))),
        email=str,
    )
    # "_" and "." are matched literally, not as wildcards.
    assert [a.pk for a in by_email.objects(email="front.desk_1@example.com")] == [account.pk]


def test_a_lookup_that_rewrites_its_value_is_refused_before_reaching_the_database():
    rewriting = CompiledQuery(lambda prefix: Account.objects.filter(name__startswith=prefix), prefix=str)
    with pytest.raises(TypeError, match="rewrites its value"):
        rewriting.objects(prefix="Harbor")
    missing = CompiledQuery(lambda pk: Account.objects.all(), pk=uuid.UUID)
    with pytest.raises(TypeError, match="does not reach the SQL"):
        missing.objects(pk=uuid.uuid4())


def test_values_must_match_the_declared_parameters():
    with pytest.raises(TypeError, match="Expected values"):
        TICKET_WITH_SITE.objects(id=uuid.uuid4())
    with pytest.raises(TypeError, match="use rows"):
        CompiledQuery(lambda pk: Ticket.objects.filter(pk=pk).values_list("id"), pk=uuid.UUID).objects(pk=uuid.uuid4())


def test_row_insert_writes_what_save_would_and_stamps_creation_time():
    before = timezone.now()
    account = Account(name="Inserted", billing_email="ops@example.com")
    with CaptureQueriesContext(connection) as queries:
        row_insert(account)
    assert len(queries) == 1
    stored = Account.objects.get(pk=account.pk)
    assert _fields(stored) == _fields(account)
    assert before <= stored.created_at <= timezone.now()
    assert account._state.adding is False
    record = IdempotencyRecord(actor_id="a", endpoint="e", key=uuid.uuid4(), request_hash="h", status_code=200, response_body={"ok": True})
    row_insert(record)
    assert record.pk is None  # the database's id is not read back
    assert IdempotencyRecord.objects.get(key=record.key).response_body == {"ok": True}


def test_row_insert_falls_back_to_save_when_a_receiver_listens():
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance.name)

    pre_save.connect(receiver, sender=Account)
    try:
        row_insert(Account(name="Heard"))
        with pytest.raises(TypeError, match="save receivers"):
            row_update(Account.objects.get(name="Heard"), fields=["name"])
    finally:
        pre_save.disconnect(receiver, sender=Account)
    assert heard == ["Heard"]
    assert Account.objects.filter(name="Heard").exists()


def test_row_update_writes_only_the_named_columns_on_the_condition_given():
    ticket = ticket_new(summary="Original")
    stale = Ticket.objects.get(pk=ticket.pk)
    Ticket.objects.filter(pk=ticket.pk).update(description="written elsewhere")
    stale.summary = "Renamed"
    stale.updated_at = timezone.now() - timedelta(days=3)
    assert row_update(stale, fields=["summary", "updated_at"], where={"state": "TRIAGED"}) == 0
    assert Ticket.objects.get(pk=ticket.pk).summary == "Original"
    assert row_update(stale, fields=["summary", "updated_at"], where={"state": ticket.state}) == 1
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.summary, stored.description) == ("Renamed", "written elsewhere")
    assert stored.updated_at > timezone.now() - timedelta(minutes=1)  # auto_now stamped, as save() does


RENAME = command("test.rename", ["dispatcher"], ["NEW"], None, "Rename")


def test_the_executor_refuses_when_the_state_changed_under_it_without_the_lock():
    ticket = ticket_new(summary="Before")
    events = AuditEvent.objects.filter(ticket=ticket).count()

    def apply(change):
        # Another writer that ignored the row lock (raw SQL; SQLite has no row locks).
        Ticket.objects.filter(pk=ticket.pk).update(description="moved on")
        with connection.cursor() as cursor:
            cursor.execute("UPDATE tickets_ticket SET state = 'TRIAGED' WHERE id = %s", [ticket.pk.hex if connection.vendor == "sqlite" else ticket.pk])
        change.ticket.summary = "After"

    with pytest.raises(DispatchError) as refused:
        ticket_execute(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.pk, command=RENAME, apply=apply)
    assert (refused.value.code, refused.value.status) == ("CONCURRENT_MODIFICATION", 409)
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.state, stored.summary, stored.description) == ("NEW", "Before", "")
    assert AuditEvent.objects.filter(ticket=ticket).count() == events


def test_a_ticket_the_executor_wrote_can_be_saved_again_through_the_model():
    ticket = ticket_new(summary="Kept")
    outcome = ticket_execute(
        actor=actor_for(Role.DISPATCHER), ticket_id=ticket.pk, command=RENAME, apply=lambda change: None
    )
    # django-fsm's concurrency check compares against the state the executor left.
    outcome.ticket.description = "saved later"
    outcome.ticket.save(update_fields=["description"])
    assert Ticket.objects.get(pk=ticket.pk).description == "saved later"


@pytest.mark.django_db(transaction=True)
def test_a_locking_lookup_refuses_to_run_outside_a_transaction_as_the_orm_does():
    ticket = ticket_new(summary="Locked")
    locked = CompiledQuery(lambda pk: Ticket.objects.select_for_update().filter(pk=pk), pk=uuid.UUID)
    with transaction.atomic():
        assert [t.summary for t in locked.objects(pk=ticket.pk)] == ["Locked"]
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            locked.objects(pk=ticket.pk)


def test_row_update_writes_a_new_row_first_in_the_same_statement_where_it_can():
    ticket = ticket_new(summary="Before")
    stored = Ticket.objects.get(pk=ticket.pk)
    stored.summary = "After"
    account = Account(name="Written first")
    with CaptureQueriesContext(connection) as queries:
        written = row_update(stored, fields=["summary"], where={"state": "NEW"}, insert_first=account)
    assert written == 1
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
    assert Ticket.objects.get(pk=ticket.pk).summary == "After"
    assert Account.objects.get(pk=account.pk).name == "Written first" and account._state.adding is False
    # The new row is written even when the update matches nothing; the caller rolls back.
    missed = Account(name="Written anyway")
    assert row_update(stored, fields=["summary"], where={"state": "CLOSED"}, insert_first=missed) == 0
    assert Account.objects.filter(name="Written anyway").exists()


def test_values_of_the_wrong_type_or_none_are_refused_and_an_empty_match_runs_nothing():
    with pytest.raises(TypeError, match="must be UUID"):
        TICKET_WITH_SITE.objects(pk=None)
    by_name = CompiledQuery(lambda name: Account.objects.filter(name=name), name=str)
    with pytest.raises(TypeError, match="must be str"):
        by_name.objects(name=7)
    nothing = CompiledQuery(lambda: Account.objects.filter(name__in=[]))
    with CaptureQueriesContext(connection) as queries:
        assert nothing.objects() == []
    assert len(queries) == 0
    with pytest.raises(TypeError, match="without prefetches"):
        CompiledQuery(lambda: Account.objects.prefetch_related("sites")).objects()
    with pytest.raises(TypeError, match="without prefetches"):
        CompiledQuery(lambda: Account.objects.values("name")).rows()
