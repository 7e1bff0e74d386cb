"""Blind intake: an agent's intake opens a triaged or schedulable ticket, never a duplicate."""

from __future__ import annotations

import importlib
import threading
import uuid
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import close_old_connections, connection

from dispatch.common.actors import ActorType
from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.intake.models import BlindIntake
from dispatch.intake.services import (
    BLIND_INTAKE,
    DEFAULT_SOP_HANDOFF_PROMPT,
    blind_intake_facts,
    blind_intake_schedulable_check,
    intake_triage,
    message_receive,
    ticket_blind_intake,
)
from dispatch.tickets.audit import REDACTED
from dispatch.tickets.models import AuditEvent, StateTransition, Ticket
from dispatch.tickets.services import ticket_cancel
from dispatch.tickets.states import TicketState
from tests.factories import SiteFactory, actor_for, ticket_new

pytestmark = pytest.mark.django_db


def intake(site=None, actor=None, **overrides):
    site = site or SiteFactory()
    fields = {
        "account_id": site.account_id,
        "site_id": site.id,
        "summary": "Front door will not lock after a break-in",
        "incident_type": "CANNOT_SECURE_ENTRY",
        "customer_name": "Jordan Sample",
        "priority": "URGENT",
        "identity_confidence": 92,
        "classification_confidence": 90,
        "contact_phone": "(510) 555-0134",
    }
    fields.update(overrides)
    return ticket_blind_intake(actor=actor or actor_for(Role.AGENT), **fields)


def refusal(**kwargs) -> DispatchError:
    with pytest.raises(DispatchError) as caught:
        intake(**kwargs)
    return caught.value


def test_confident_intake_is_ready_to_schedule_with_one_event_and_one_transition():
    outcome = intake()
    ticket = Ticket.objects.get(pk=outcome.ticket.pk)
    assert ticket.state == TicketState.READY_TO_SCHEDULE
    assert (ticket.priority, ticket.incident_type, ticket.customer_name) == (
        "URGENT",
        "CANNOT_SECURE_ENTRY",
        "Jordan Sample",
    )
    assert ticket.customer_phone == "+15105550134"
    assert (ticket.identity_confidence, ticket.classification_confidence) == (92, 90)
    assert ticket.version == 1
    events = list(AuditEvent.objects.filter(ticket=ticket))
    assert [(e.tool_name, e.before_state, e.after_state) for e in events] == [
        ("ticket.blind_intake", "", "READY_TO_SCHEDULE")
    ]
    assert list(StateTransition.objects.filter(ticket=ticket).values_list("from_state", "to_state")) == [
        ("", "READY_TO_SCHEDULE")
    ]
    assert outcome.result["sop_handoff_required"] is False
    assert outcome.result["sop_handoff_prompt"] is None
    assert outcome.result["readiness"] == {"ready": True, "readiness_reasons": []}


def test_exactly_85_on_both_is_confident_enough():
    assert intake(identity_confidence=85, classification_confidence=85).ticket.state == TicketState.READY_TO_SCHEDULE


@pytest.mark.parametrize(
    "identity,classification,reasons",
    [
        (84, 95, ["IDENTITY_CONFIDENCE"]),
        (95, 84, ["CLASSIFICATION_CONFIDENCE"]),
        (20, 20, ["IDENTITY_CONFIDENCE", "CLASSIFICATION_CONFIDENCE"]),
    ],
)
def test_low_confidence_lands_in_triaged_with_the_sop_prompt(identity, classification, reasons):
    outcome = intake(identity_confidence=identity, classification_confidence=classification)
    assert Ticket.objects.get(pk=outcome.ticket.pk).state == TicketState.TRIAGED
    assert outcome.result["readiness"] == {"ready": False, "readiness_reasons": reasons}
    assert outcome.result["sop_handoff_required"] is True
    assert outcome.result["sop_handoff_prompt"] == DEFAULT_SOP_HANDOFF_PROMPT


def test_an_explicitly_unacknowledged_sop_handoff_keeps_a_confident_intake_triaged():
    outcome = intake(sop_handoff_acknowledged=False, sop_handoff_prompt="Confirm the gate code with the owner.")
    assert outcome.ticket.state == TicketState.TRIAGED
    assert outcome.result["readiness"]["readiness_reasons"] == ["SOP_HANDOFF_REQUIRED"]
    assert outcome.result["sop_handoff_prompt"] == "Confirm the gate code with the owner."
    assert intake(site=SiteFactory(), sop_handoff_acknowledged=True).ticket.state == TicketState.READY_TO_SCHEDULE


def test_contact_details_are_normalised_and_redacted_in_the_audit_payload():
    sent = {"contact_phone": "+1 415 555 2671", "contact_email": "  Jordan@Example.COM "}
    outcome = intake(**sent, request=sent)
    ticket = outcome.ticket
    assert (ticket.customer_phone, ticket.customer_email) == ("+14155552671", "jordan@example.com")
    payload = outcome.event.payload
    assert payload["contact_phone"] == REDACTED and payload["contact_email"] == REDACTED
    assert payload["request"]["contact_phone"] == REDACTED and payload["request"]["contact_email"] == REDACTED
    assert payload["state_recommendation"] == "READY_TO_SCHEDULE"


@pytest.mark.parametrize("phone", ["555-010-9999", "12", "not a phone", "+1 (555) 010-1234"])
def test_an_invalid_phone_is_refused_and_nothing_is_written(phone):
    events = AuditEvent.objects.count()
    error = refusal(contact_phone=phone)
    assert (error.code, error.status, error.details["field"]) == ("INVALID_REQUEST", 400, "contact_phone")
    assert AuditEvent.objects.count() == events and Ticket.objects.count() == 0


def test_email_alone_is_enough_but_no_contact_channel_is_refused():
    assert intake(contact_phone=None, contact_email="pat@example.com").ticket.customer_phone == ""
    error = refusal(contact_phone=None, contact_email=None)
    assert (error.code, error.status, error.dimension) == ("BLIND_INTAKE_VALIDATION_FAILED", 400, "identity")
    assert error.details["missing_contact_channel"] is True


@pytest.mark.parametrize(
    "field,value",
    [
        ("priority", "SOON"),
        ("identity_confidence", 101),
        ("classification_confidence", -1),
        ("identity_confidence", True),
        ("classification_confidence", "90"),
        ("summary", "   "),
        ("customer_name", ""),
        ("incident_type", None),
        ("contact_email", "not-an-email"),
        ("nte_cents", -5),
        ("sop_handoff_acknowledged", "yes"),
        ("site_id", "not-a-uuid"),
    ],
)
def test_bad_input_is_refused_with_invalid_request(field, value):
    error = refusal(**{field: value})
    assert (error.code, error.status) == ("INVALID_REQUEST", 400)
    assert Ticket.objects.count() == 0


def test_unknown_site_and_a_site_of_another_account_are_refused():
    site = SiteFactory()
    with pytest.raises(DispatchError) as unknown:
        intake(site=site, site_id=uuid.uuid4())
    assert (unknown.value.code, unknown.value.status) == ("SITE_NOT_FOUND", 404)
    with pytest.raises(DispatchError) as foreign:
        intake(site=site, account_id=SiteFactory().account_id)
    assert (foreign.value.code, foreign.value.status) == ("INVALID_REQUEST", 400)


@pytest.mark.parametrize("role", [r for r in Role if r not in BLIND_INTAKE.roles and r != Role.SYSTEM])
def test_roles_outside_the_contract_are_refused(role):
    error = refusal(actor=actor_for(role))
    assert (error.code, error.status) == ("TOOL_ROLE_FORBIDDEN", 403)


def test_a_scoped_credential_may_not_intake_for_another_account():
    site = SiteFactory()
    error = refusal(site=site, actor=actor_for(Role.AGENT, account_ids=frozenset({str(uuid.uuid4())})))
    assert (error.code, error.status) == ("FORBIDDEN_SCOPE", 403)
    assert intake(site=site, actor=actor_for(Role.AGENT, site_ids=frozenset({str(site.id)}))).ticket.site_id == site.id


def test_a_repeat_of_the_same_customer_site_and_incident_is_refused_naming_the_open_ticket():
    site = SiteFactory()
    first = intake(site=site).ticket
    for repeat in (
        {"contact_phone": "510.555.0134", "customer_name": "J. Sample"},  # same phone, other spelling of the name
        {"contact_phone": None, "contact_email": "other@example.com"},  # same name
        {"contact_phone": "(415) 555-2671", "customer_name": "JORDAN SAMPLE"},
    ):
        error = refusal(site=site, **repeat)
        assert (error.code, error.status, error.dimension) == ("DUPLICATE_INTAKE", 409, "identity")
        assert error.details["duplicate_ticket_id"] == str(first.id)
    assert Ticket.objects.filter(site=site).count() == 1


def test_the_email_alone_identifies_the_same_customer():
    site = SiteFactory()
    first = intake(site=site, contact_phone=None, contact_email="pat@example.com").ticket
    error = refusal(site=site, contact_phone=None, contact_email="PAT@example.com", customer_name="Someone Else")
    assert error.details["duplicate_ticket_id"] == str(first.id)


def test_other_sites_incidents_or_customers_are_not_duplicates():
    site = SiteFactory()
    intake(site=site)
    intake(site=SiteFactory(account=site.account))
    intake(site=site, incident_type="DOOR_WONT_LATCH")
    intake(site=site, customer_name="Someone Else", contact_phone="(415) 555-2671")
    assert Ticket.objects.filter(site=site).count() == 3


def test_a_cancelled_ticket_or_one_older_than_the_window_does_not_block_a_new_intake():
    site = SiteFactory()
    first = intake(site=site).ticket
    ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=first.id, reason="Customer fixed it themselves")
    second = intake(site=site).ticket
    Ticket.objects.filter(pk=second.pk).update(created_at=second.created_at - timedelta(minutes=121))
    third = intake(site=site).ticket
    assert len({first.id, second.id, third.id}) == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_intakes_at_once_open_one_ticket():
    site = SiteFactory()
    barrier = threading.Barrier(2)
    results: list = []

    def run():
        close_old_connections()
        try:
            barrier.wait(timeout=10)
            results.append(intake(site=site).ticket.id)
        except DispatchError as error:
            results.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2 and results.count("DUPLICATE_INTAKE") == 1
    assert Ticket.objects.filter(site=site).count() == 1


def test_triage_to_ready_refuses_a_low_confidence_intake_and_changes_nothing():
    ticket = intake(identity_confidence=20, classification_confidence=20).ticket
    dispatcher = actor_for(Role.DISPATCHER)
    with pytest.raises(DispatchError) as caught:
        intake_triage(
            actor=dispatcher,
            ticket_id=ticket.id,
            priority="EMERGENCY",
            incident_type="CANNOT_SECURE_ENTRY",
            outcome=TicketState.READY_TO_SCHEDULE,
        )
    assert (caught.value.code, caught.value.status, caught.value.dimension) == (
        "LOW_IDENTITY_CONFIDENCE",
        409,
        "identity",
    )
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert (fresh.state, fresh.version, fresh.priority) == (TicketState.TRIAGED, 1, "URGENT")


def test_triage_to_ready_names_low_classification_then_the_missing_sop_acknowledgement():
    unsure = intake(identity_confidence=95, classification_confidence=50).ticket
    with pytest.raises(DispatchError) as low:
        blind_intake_schedulable_check(unsure)
    assert low.value.code == "LOW_CLASSIFICATION_CONFIDENCE"

    parked = intake(site=SiteFactory(), sop_handoff_acknowledged=False).ticket
    dispatcher = actor_for(Role.DISPATCHER)
    with pytest.raises(DispatchError) as sop:
        intake_triage(
            actor=dispatcher,
            ticket_id=parked.id,
            priority="URGENT",
            incident_type="CANNOT_SECURE_ENTRY",
            outcome=TicketState.READY_TO_SCHEDULE,
        )
    assert (sop.value.code, sop.value.dimension) == ("SOP_HANDOFF_REQUIRED", "policy")
    assert sop.value.details["sop_handoff_prompt"] == DEFAULT_SOP_HANDOFF_PROMPT
    moved = intake_triage(
        actor=dispatcher,
        ticket_id=parked.id,
        priority="URGENT",
        incident_type="CANNOT_SECURE_ENTRY",
        outcome=TicketState.READY_TO_SCHEDULE,
        sop_handoff_acknowledged=True,
    )
    assert moved.ticket.state == TicketState.READY_TO_SCHEDULE


def test_triage_gate_leaves_tickets_from_other_channels_and_other_outcomes_alone():
    created = ticket_new()
    dispatcher = actor_for(Role.DISPATCHER)
    ready = intake_triage(
        actor=dispatcher,
        ticket_id=created.id,
        priority="ROUTINE",
        incident_type="DOOR_WONT_LATCH",
        outcome=TicketState.READY_TO_SCHEDULE,
    )
    assert ready.ticket.state == TicketState.READY_TO_SCHEDULE
    unsure = intake(identity_confidence=10, classification_confidence=10).ticket
    retriaged = intake_triage(
        actor=dispatcher, ticket_id=unsure.id, priority="EMERGENCY", incident_type="CANNOT_SECURE_ENTRY"
    )
    assert (retriaged.ticket.state, retriaged.ticket.priority) == (TicketState.TRIAGED, "EMERGENCY")


def test_triage_gate_answers_scope_and_state_before_confidence():
    ticket = intake(identity_confidence=10, classification_confidence=10).ticket
    outsider = actor_for(Role.DISPATCHER, account_ids=frozenset({str(uuid.uuid4())}))
    with pytest.raises(DispatchError) as scope:
        intake_triage(
            actor=outsider,
            ticket_id=ticket.id,
            priority="URGENT",
            incident_type="X",
            outcome=TicketState.READY_TO_SCHEDULE,
        )
    assert scope.value.code == "FORBIDDEN_SCOPE"
    with pytest.raises(DispatchError) as role:
        intake_triage(
            actor=actor_for(Role.TECHNICIAN),
            ticket_id=ticket.id,
            priority="URGENT",
            incident_type="X",
            outcome=TicketState.READY_TO_SCHEDULE,
        )
    assert role.value.code == "TOOL_ROLE_FORBIDDEN"
    ready = intake(site=SiteFactory()).ticket
    with pytest.raises(DispatchError) as state:
        intake_triage(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=ready.id,
            priority="URGENT",
            incident_type="X",
            outcome=TicketState.READY_TO_SCHEDULE,
        )
    assert state.value.code == "INVALID_STATE_TRANSITION"
    with pytest.raises(DispatchError) as missing:
        intake_triage(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=uuid.uuid4(),
            priority="URGENT",
            incident_type="X",
            outcome=TicketState.READY_TO_SCHEDULE,
        )
    assert missing.value.code == "TICKET_NOT_FOUND"


def test_what_the_agent_reported_is_kept_in_the_intake_record():
    outcome = intake(identity_confidence=60, classification_confidence=95, sop_handoff_prompt="Confirm the gate code.")
    record = BlindIntake.objects.get(ticket=outcome.ticket)
    assert (record.identity_confidence, record.classification_confidence) == (60, 95)
    assert (record.identity_threshold, record.classification_threshold) == (85, 85)
    assert record.readiness_reasons == ["IDENTITY_CONFIDENCE"]
    assert (record.sop_handoff_required, record.sop_handoff_acknowledged) == (True, False)
    assert record.sop_handoff_prompt == "Confirm the gate code."
    assert record.identity_signature == outcome.result["identity_signature"]
    assert blind_intake_facts(record) == outcome.result


def test_an_acknowledged_sop_handoff_is_recorded_and_not_asked_again():
    parked = intake(sop_handoff_acknowledged=False).ticket
    dispatcher = actor_for(Role.DISPATCHER)
    intake_triage(
        actor=dispatcher,
        ticket_id=parked.id,
        priority="URGENT",
        incident_type="CANNOT_SECURE_ENTRY",
        outcome=TicketState.READY_TO_SCHEDULE,
        sop_handoff_acknowledged=True,
    )
    assert BlindIntake.objects.get(ticket=parked).sop_handoff_acknowledged is True
    blind_intake_schedulable_check(Ticket.objects.get(pk=parked.pk))


def test_a_blind_intake_recorded_before_the_table_existed_is_carried_over_from_its_audit_event():
    outcome = intake(identity_confidence=40, classification_confidence=90, sop_handoff_acknowledged=False)
    expected = BlindIntake.objects.filter(ticket=outcome.ticket).values().get()
    BlindIntake.objects.all().delete()

    migration = importlib.import_module("dispatch.intake.migrations.0003_blind_intake_facts")
    migration.blind_intakes_from_audit(django_apps, None)
    migration.blind_intakes_from_audit(django_apps, None)  # run twice: still one row per ticket

    carried = BlindIntake.objects.filter(ticket=outcome.ticket).values().get()
    assert {k: v for k, v in carried.items() if k != "id"} == {
        **{k: v for k, v in expected.items() if k != "id"},
        "created_at": outcome.event.created_at,
    }
    with pytest.raises(DispatchError) as caught:
        blind_intake_schedulable_check(Ticket.objects.get(pk=outcome.ticket.pk))
    assert caught.value.code == "LOW_IDENTITY_CONFIDENCE"


def test_a_dispatcher_in_person_may_override_the_gate_with_a_reason_and_the_audit_records_it():
    unsure = intake(identity_confidence=40, classification_confidence=50, sop_handoff_acknowledged=False).ticket
    outcome = intake_triage(
        actor=actor_for(Role.DISPATCHER),
        ticket_id=unsure.id,
        priority="URGENT",
        incident_type="CANNOT_SECURE_ENTRY",
        outcome=TicketState.READY_TO_SCHEDULE,
        gate_override=True,
        override_reason="Known customer, called back",
    )
    assert outcome.ticket.state == TicketState.READY_TO_SCHEDULE
    assert outcome.event.payload["gate_override"] == {
        "codes": ["LOW_IDENTITY_CONFIDENCE", "LOW_CLASSIFICATION_CONFIDENCE", "SOP_HANDOFF_REQUIRED"],
        "reason": "Known customer, called back",
    }


def test_an_override_needs_a_reason_and_changes_nothing_without_one():
    unsure = intake(identity_confidence=40).ticket
    with pytest.raises(DispatchError) as caught:
        intake_triage(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=unsure.id,
            priority="URGENT",
            incident_type="X",
            outcome=TicketState.READY_TO_SCHEDULE,
            gate_override=True,
            override_reason="  ",
        )
    assert (caught.value.code, caught.value.details["field"]) == ("INVALID_REQUEST", "override_reason")
    assert Ticket.objects.get(pk=unsure.pk).version == 1


@pytest.mark.parametrize(
    "actor",
    [actor_for(Role.AGENT), actor_for(Role.DISPATCHER, actor_type=ActorType.AGENT)],
    ids=["agent", "dispatcher-role-bot"],
)
def test_only_a_person_at_the_dispatch_desk_may_override_the_gate(actor):
    unsure = intake(identity_confidence=40).ticket
    with pytest.raises(DispatchError) as caught:
        intake_triage(
            actor=actor,
            ticket_id=unsure.id,
            priority="URGENT",
            incident_type="CANNOT_SECURE_ENTRY",
            outcome=TicketState.READY_TO_SCHEDULE,
            gate_override=True,
            override_reason="Trust me",
        )
    assert (caught.value.code, caught.value.status) == ("LOW_IDENTITY_CONFIDENCE", 409)
    assert caught.value.details["override_refused"]
    fresh = Ticket.objects.get(pk=unsure.pk)
    assert (fresh.state, fresh.version) == (TicketState.TRIAGED, 1)


def test_a_customer_text_does_not_carry_a_gated_blind_intake_past_the_gate():
    # Confident, but the SOP handoff is still to be done: a later text from the customer that
    # raises the priority is recorded, and the ticket stays TRIAGED for a dispatcher.
    parked = intake(priority="ROUTINE", sop_handoff_acknowledged=False).ticket
    result = message_receive(
        channel="SMS",
        provider_message_id="SM-gate-1",
        sender_phone="+15105550134",
        body="This is an emergency now, the door is wide open",
    )
    assert result.ticket.pk == parked.pk
    fresh = Ticket.objects.get(pk=parked.pk)
    assert (fresh.state, fresh.priority) == (TicketState.TRIAGED, "EMERGENCY")
