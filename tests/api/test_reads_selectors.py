"""The reads behind ticket.get, ticket.timeline, dispatcher.cockpit and tech.job_packet."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role
from dispatch.readmodels.cockpit import dispatcher_cockpit
from dispatch.readmodels.job_packet import tech_job_packet
from dispatch.tickets.commands import command
from dispatch.tickets.models import Ticket
from dispatch.tickets.selectors import ticket_detail, ticket_get_for_actor, ticket_timeline
from dispatch.tickets.services import ticket_cancel, ticket_triage
from dispatch.tickets.states import TicketState
from tests.factories import (
    AssetFactory,
    ContactFactory,
    SiteFactory,
    TechnicianFactory,
    actor_for,
    ticket_move,
    ticket_new,
)

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# The contract's roles and from-states for the tools the cockpit and the packet describe.
COMMANDS = [
    command("schedule.propose", ["dispatcher", "agent"], ["READY_TO_SCHEDULE"], "SCHEDULE_PROPOSED"),
    command("schedule.confirm", ["dispatcher"], ["SCHEDULE_PROPOSED"], "SCHEDULED"),
    command("assignment.dispatch", ["dispatcher"], ["TRIAGED", "SCHEDULED"], "DISPATCHED"),
    command("assignment.recommend", ["dispatcher", "agent"], ["SCHEDULED", "READY_TO_SCHEDULE", "SCHEDULE_PROPOSED"]),
    command("schedule.hold", ["dispatcher"], ["SCHEDULE_PROPOSED", "SCHEDULED"]),
    command("ticket.timeline", ["dispatcher", "agent", "customer", "technician", "qa", "approver", "finance"]),
    command("tech.job_packet", ["technician", "dispatcher"]),
    command("tech.check_in", ["technician", "dispatcher"], ["DISPATCHED"], "IN_PROGRESS"),
    command("closeout.add_evidence", ["dispatcher", "agent", "technician"]),
    command("tech.complete", ["dispatcher", "technician"], ["IN_PROGRESS"], "COMPLETED_PENDING_VERIFICATION"),
    command(
        "closeout.candidate", ["dispatcher", "agent", "technician"], ["IN_PROGRESS"], "COMPLETED_PENDING_VERIFICATION"
    ),
    command(
        "ticket.cancel",
        ["dispatcher", "approver", "finance"],
        [s for s in TicketState if s not in (TicketState.CLOSED, TicketState.CANCELLED)],
        "CANCELLED",
    ),
]


class RegistryEntry:
    """What the API's registry hands in: a command with its HTTP method and contract route."""

    def __init__(self, cmd, method, route):
        self.command, self.method, self.route = cmd, method, route


ROUTES = {
    "schedule.propose": ("POST", "/tickets/{ticketId}/schedule/propose"),
    "assignment.dispatch": ("POST", "/tickets/{ticketId}/assignment/dispatch"),
    "ticket.timeline": ("GET", "/tickets/{ticketId}/timeline"),
    "tech.check_in": ("POST", "/tickets/{ticketId}/tech/check-in"),
}

# Lets a test put a ticket in any state (and assign it) through the executor itself.
TEST_MOVE = command("test.move", ["dispatcher"])


def walk(ticket, *states, tech=None):
    def apply(change):
        if tech is not None:
            change.ticket.assigned_tech = tech
        for state in states:
            change.transition(state)

    return ticket_move(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=TEST_MOVE, apply=apply).ticket


def triaged(priority="URGENT", incident_type="DOOR_WONT_LATCH", site=None, **kwargs):
    ticket = ticket_new(site=site, **kwargs)
    return ticket_triage(
        actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, priority=priority, incident_type=incident_type
    ).ticket


def dispatched(tech, incident_type="CANNOT_SECURE_ENTRY", site=None):
    ticket = triaged(priority="EMERGENCY", incident_type=incident_type, site=site)
    return walk(ticket, TicketState.DISPATCHED, tech=tech)


# --- ticket.get -------------------------------------------------------------------------


def test_ticket_detail_has_the_contract_fields_as_strings_numbers_and_utc_times():
    asset = AssetFactory()
    ticket = ticket_new(site=asset.site, asset_id=asset.id, description="Latch sticks", nte_cents=45000)
    ticket = walk(ticket, TicketState.TRIAGED)
    Ticket.objects.filter(pk=ticket.pk).update(
        scheduled_start=timezone.now(), scheduled_end=timezone.now() + timedelta(hours=1)
    )
    detail = ticket_detail(Ticket.objects.get(pk=ticket.pk))
    assert list(detail) == [
        "id",
        "account_id",
        "site_id",
        "asset_id",
        "state",
        "priority",
        "incident_type",
        "summary",
        "description",
        "customer_name",
        "customer_phone",
        "customer_email",
        "nte_cents",
        "scheduled_start",
        "scheduled_end",
        "identity_confidence",
        "classification_confidence",
        "assigned_tech_id",
        "version",
        "created_at",
        "updated_at",
    ]
    assert detail["id"] == str(ticket.id) and detail["asset_id"] == str(asset.id)
    assert (detail["state"], detail["nte_cents"], detail["version"], detail["description"]) == (
        "TRIAGED",
        45000,
        2,
        "Latch sticks",
    )
    for key in ("scheduled_start", "scheduled_end", "created_at", "updated_at"):
        assert ISO_Z.match(detail[key]), detail[key]


def test_ticket_detail_writes_null_for_what_is_empty():
    detail = ticket_detail(ticket_new())
    for key in (
        "asset_id",
        "incident_type",
        "description",
        "customer_name",
        "customer_phone",
        "customer_email",
        "nte_cents",
        "scheduled_start",
        "scheduled_end",
        "identity_confidence",
        "classification_confidence",
        "assigned_tech_id",
    ):
        assert detail[key] is None, key


def test_a_reader_gets_404_for_an_unknown_ticket_and_403_outside_its_scope():
    ticket = ticket_new()
    for bad in ("not-a-uuid", uuid.uuid4()):
        with pytest.raises(DispatchError) as missing:
            ticket_get_for_actor(actor=actor_for(Role.DISPATCHER), ticket_id=bad)
        assert (missing.value.code, missing.value.status) == ("TICKET_NOT_FOUND", 404)
    outsider = actor_for(Role.AGENT, account_ids=frozenset({str(uuid.uuid4())}))
    with pytest.raises(DispatchError) as scope:
        ticket_get_for_actor(actor=outsider, ticket_id=ticket.id)
    assert (scope.value.code, scope.value.status) == ("FORBIDDEN_SCOPE", 403)
    insider = actor_for(Role.AGENT, account_ids=frozenset({str(ticket.account_id)}))
    assert ticket_get_for_actor(actor=insider, ticket_id=str(ticket.id)).pk == ticket.pk


def test_a_technician_reads_only_the_tickets_assigned_to_them():
    mine, theirs = TechnicianFactory(), TechnicianFactory()
    ticket = dispatched(mine)
    assert ticket_get_for_actor(actor=actor_for(Role.TECHNICIAN, technician=mine), ticket_id=ticket.id).pk == ticket.pk
    with pytest.raises(DispatchError) as refused:
        ticket_get_for_actor(actor=actor_for(Role.TECHNICIAN, technician=theirs), ticket_id=ticket.id)
    assert refused.value.code == "FORBIDDEN_SCOPE"


# --- ticket.timeline --------------------------------------------------------------------


def test_timeline_lists_every_event_in_order_in_one_query():
    ticket = triaged()
    ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="Duplicate of a phone call")
    ticket_new()  # another ticket's events stay out
    with CaptureQueriesContext(connection) as queries:
        timeline = ticket_timeline(ticket)
    assert len(queries) == 1
    assert timeline["ticket_id"] == str(ticket.id)
    assert [(e["tool_name"], e["before_state"], e["after_state"]) for e in timeline["events"]] == [
        ("ticket.create", None, "NEW"),
        ("ticket.triage", "NEW", "TRIAGED"),
        ("ticket.cancel", "TRIAGED", "CANCELLED"),
    ]
    event = timeline["events"][2]
    assert set(event) == {
        "id",
        "ticket_id",
        "actor_type",
        "actor_id",
        "actor_role",
        "tool_name",
        "request_id",
        "correlation_id",
        "trace_id",
        "before_state",
        "after_state",
        "payload",
        "created_at",
    }
    assert event["payload"] == {"reason": "Duplicate of a phone call"}
    assert event["actor_role"] == "dispatcher" and ISO_Z.match(event["created_at"])


def test_events_written_in_the_same_instant_keep_the_order_they_were_written_in():
    instant = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=instant):
        ticket = triaged()
        ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, reason="Customer called back")
    events = ticket_timeline(ticket)["events"]
    assert len({e["created_at"] for e in events}) == 1
    assert [e["tool_name"] for e in events] == ["ticket.create", "ticket.triage", "ticket.cancel"]


def test_timeline_payloads_are_the_redacted_ones():
    ticket = ticket_new()
    ticket_move(
        actor=actor_for(Role.DISPATCHER),
        ticket_id=ticket.id,
        command=TEST_MOVE,
        apply=lambda change: change.audit_payload.update({"customer_phone": "+15105550100", "note": "call first"}),
    )
    payload = ticket_timeline(ticket)["events"][-1]["payload"]
    assert payload == {"customer_phone": "[redacted]", "note": "call first"}


# --- dispatcher.cockpit -----------------------------------------------------------------


def age(ticket, minutes):
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def queue_ids(cockpit):
    return [row["ticket_id"] for row in cockpit["queue"]]


def test_cockpit_lists_open_tickets_by_priority_then_oldest_first():
    routine_old = triaged("ROUTINE")
    age(routine_old, 600)
    urgent_new = triaged("URGENT")
    urgent_old = triaged("URGENT")
    age(urgent_old, 30)
    emergency = triaged("EMERGENCY")
    closed_out = triaged("EMERGENCY")
    ticket_cancel(actor=actor_for(Role.DISPATCHER), ticket_id=closed_out.id, reason="Customer fixed it")
    cockpit = dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=COMMANDS)
    assert queue_ids(cockpit) == [str(t.id) for t in (emergency, urgent_old, urgent_new, routine_old)]
    assert cockpit["counts"]["by_state"]["TRIAGED"] == 4
    assert "CANCELLED" not in cockpit["counts"]["by_state"]
    assert cockpit["counts"]["by_priority"] == {"EMERGENCY": 1, "URGENT": 2, "ROUTINE": 1}
    assert cockpit["page"] == {"limit": 50, "offset": 0, "total": 4, "next_offset": None, "next_cursor": None}
    assert cockpit["next_cursor"] is None


def test_cockpit_sla_status_follows_the_priority_targets():
    healthy = triaged("ROUTINE")  # 24 h target
    warning = triaged("EMERGENCY")
    age(warning, 20)  # 40 minutes left of 60
    breach = triaged("URGENT")
    age(breach, 250)  # 10 minutes past 240
    cockpit = dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=COMMANDS, sort="sla")
    rows = {row["ticket_id"]: row for row in cockpit["queue"]}
    assert rows[str(healthy.id)]["sla_status"] == "healthy"
    assert rows[str(warning.id)]["sla_status"] == "warning"
    assert rows[str(breach.id)]["sla_status"] == "breach"
    assert rows[str(breach.id)]["sla_timer_remaining_minutes"] < 0
    assert rows[str(breach.id)]["sla_timer_remaining"].startswith("-00:1")
    assert queue_ids(cockpit) == [str(breach.id), str(warning.id), str(healthy.id)]
    assert cockpit["counts"]["by_sla_status"] == {"healthy": 1, "warning": 1, "breach": 1}
    only_breach = dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=COMMANDS, sla_status=["breach"])
    assert queue_ids(only_breach) == [str(breach.id)] and only_breach["page"]["total"] == 1


def test_cockpit_rows_carry_site_technician_and_the_actions_allowed_now():
    tech = TechnicianFactory(display_name="Dana Reyes")
    ticket = dispatched(tech)
    ready = walk(triaged("ROUTINE"), TicketState.READY_TO_SCHEDULE)
    entries = [RegistryEntry(c, *ROUTES.get(c.tool, ("POST", None))) for c in COMMANDS]
    cockpit = dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=entries)
    rows = {row["ticket_id"]: row for row in cockpit["queue"]}
    row = rows[str(ticket.id)]
    assert row["site"]["id"] == str(ticket.site_id) and row["site"]["service_region"] == "EAST_BAY"
    assert (row["assigned_tech"], row["assigned_tech_name"]) == (str(tech.id), "Dana Reyes")
    actions = {a["tool_name"]: a for a in row["actions"]}
    assert actions["tech.job_packet"]["enabled"] is True
    refused = actions["schedule.propose"]
    assert refused["enabled"] is False
    assert refused["policy_error"]["code"] == "INVALID_STATE_TRANSITION"
    assert refused["policy_error"]["allowed_from_states"] == ["READY_TO_SCHEDULE"]
    assert refused["endpoint"] == f"/tickets/{ticket.id}/schedule/propose" and refused["mutating"] is True
    assert "tech.check_in" in row["allowed_tools"] and "schedule.propose" not in row["allowed_tools"]
    ready_actions = {a["tool_name"]: a for a in rows[str(ready.id)]["actions"]}
    assert ready_actions["schedule.propose"]["enabled"] is True


def test_cockpit_explains_the_emergency_bypass_and_refuses_tools_by_role():
    ticket = triaged("EMERGENCY", "CANNOT_SECURE_ENTRY")
    dispatcher_row = dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=COMMANDS)["queue"][0]
    dispatch = next(a for a in dispatcher_row["actions"] if a["tool_name"] == "assignment.dispatch")
    assert dispatch["enabled"] is True
    assert dispatch["requirements"]["dispatch_mode"] == "EMERGENCY_BYPASS"
    agent_row = dispatcher_cockpit(actor=actor_for(Role.AGENT), commands=COMMANDS)["queue"][0]
    assert agent_row["ticket_id"] == str(ticket.id)
    dispatch = next(a for a in agent_row["actions"] if a["tool_name"] == "assignment.dispatch")
    assert dispatch["enabled"] is False
    assert dispatch["policy_error"]["code"] == "TOOL_ROLE_FORBIDDEN"
    assert dispatch["policy_error"]["dimension"] == "role"


def test_cockpit_shows_a_scoped_credential_only_its_own_tickets():
    mine_site, other_site = SiteFactory(), SiteFactory()
    mine = triaged(site=mine_site)
    triaged(site=other_site)
    by_account = actor_for(Role.DISPATCHER, account_ids=frozenset({str(mine_site.account_id)}))
    by_site = actor_for(Role.DISPATCHER, site_ids=frozenset({str(mine_site.id)}))
    for actor in (by_account, by_site):
        cockpit = dispatcher_cockpit(actor=actor, commands=COMMANDS)
        assert queue_ids(cockpit) == [str(mine.id)]
        assert cockpit["counts"]["total_open"] == 1


def test_cockpit_filters_and_pages():
    site = SiteFactory()
    tickets = [triaged("URGENT", site=site) for _ in range(5)]
    for index, ticket in enumerate(tickets):
        age(ticket, 100 - index)
    triaged("URGENT", incident_type="HARDWARE_REPLACEMENT")
    dispatcher = actor_for(Role.DISPATCHER)
    first = dispatcher_cockpit(actor=dispatcher, commands=COMMANDS, site_id=[str(site.id)], limit=2)
    assert first["page"] == {"limit": 2, "offset": 0, "total": 5, "next_offset": 2, "next_cursor": first["next_cursor"]}
    assert first["next_cursor"]
    second = dispatcher_cockpit(actor=dispatcher, commands=COMMANDS, site_id=[str(site.id)], limit=2, offset=2)
    last = dispatcher_cockpit(actor=dispatcher, commands=COMMANDS, site_id=[str(site.id)], limit=2, offset=4)
    assert queue_ids(first) + queue_ids(second) + queue_ids(last) == [str(t.id) for t in tickets]
    assert last["page"]["next_offset"] is None
    by_type = dispatcher_cockpit(actor=dispatcher, commands=COMMANDS, incident_type=["hardware_replacement"])
    assert [row["incident_type"] for row in by_type["queue"]] == ["HARDWARE_REPLACEMENT"]
    by_state = dispatcher_cockpit(actor=dispatcher, commands=COMMANDS, state=["ready_to_schedule"])
    assert by_state["queue"] == [] and by_state["counts"]["by_state"]["TRIAGED"] == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": ["CLOSED"]},
        {"state": ["BOGUS"]},
        {"priority": ["SOON"]},
        {"sla_status": ["late"]},
        {"site_id": ["x"]},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"limit": "ten"},
        {"sort": "name"},
    ],
)
def test_cockpit_refuses_filters_it_does_not_know(kwargs):
    with pytest.raises(DispatchError) as refused:
        dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=COMMANDS, **kwargs)
    assert (refused.value.code, refused.value.status) == ("INVALID_REQUEST", 400)


def test_cockpit_costs_the_same_number_of_queries_for_3_or_30_tickets():
    tech = TechnicianFactory()
    dispatcher = actor_for(Role.DISPATCHER)

    def cost():
        with CaptureQueriesContext(connection) as queries:
            dispatcher_cockpit(actor=dispatcher, commands=COMMANDS)
        return len(queries)

    for _ in range(3):
        dispatched(tech)
    small = cost()
    for _ in range(27):
        dispatched(tech, site=SiteFactory())
    assert cost() == small <= 3


def test_cockpit_selected_ticket_carries_detail_and_timeline():
    ticket = triaged()
    cockpit = dispatcher_cockpit(actor=actor_for(Role.DISPATCHER), commands=COMMANDS, ticket_id=str(ticket.id))
    assert cockpit["selected_ticket"]["ticket"]["id"] == str(ticket.id)
    assert [e["tool_name"] for e in cockpit["selected_ticket"]["timeline"]["events"]] == [
        "ticket.create",
        "ticket.triage",
    ]


# --- tech.job_packet --------------------------------------------------------------------


def packet_for(actor, ticket):
    return tech_job_packet(actor=actor, ticket=ticket, commands=COMMANDS)["packet"]


def test_packet_gives_the_assigned_technician_site_access_contact_scope_and_asset():
    tech = TechnicianFactory()
    site = SiteFactory(access_instructions="Key box left of the loading dock", access_code="4821", hours="Mon-Fri 7-18")
    asset = AssetFactory(site=site, serial="DG-2291")
    ContactFactory(account=site.account, site=site, name="Pat Rivera", phone="+15105550177")
    ticket = ticket_new(site=site, asset_id=asset.id, description="Glass cracked, door won't lock", nte_cents=90000)
    ticket = walk(
        ticket_triage(
            actor=actor_for(Role.DISPATCHER),
            ticket_id=ticket.id,
            priority="EMERGENCY",
            incident_type="CANNOT_SECURE_ENTRY",
        ).ticket,
        TicketState.DISPATCHED,
        tech=tech,
    )
    packet = packet_for(actor_for(Role.TECHNICIAN, technician=tech), ticket)
    access = packet["site_and_access"]
    assert access["access_code"] == "4821"
    assert access["access_instructions"] == "Key box left of the loading dock"
    assert (access["lat"], access["lng"], access["hours"]) == (37.8044, -122.2711, "Mon-Fri 7-18")
    assert access["onsite_contact"] == {
        "name": "Pat Rivera",
        "phone": "+15105550177",
        "email": access["onsite_contact"]["email"],
    }
    assert packet["work_scope"]["nte_cents"] == 90000
    assert packet["work_scope"]["customer_description"] == "Glass cracked, door won't lock"
    assert packet["asset"]["serial"] == "DG-2291"
    assert packet["header"]["current_state"] == "DISPATCHED"
    assert packet_for(actor_for(Role.DISPATCHER), ticket)["site_and_access"]["access_code"] == "4821"
    assert packet_for(actor_for(Role.QA), ticket)["site_and_access"]["access_code"] is None


def test_packet_lists_the_template_keys_and_what_evidence_is_missing():
    tech = TechnicianFactory()
    ticket = walk(dispatched(tech), TicketState.ON_SITE, TicketState.IN_PROGRESS)
    packet = packet_for(actor_for(Role.TECHNICIAN, technician=tech), ticket)
    expected_keys = [
        "photo_before_security_risk",
        "photo_after_temporary_or_permanent_securement",
        "note_risk_mitigation_and_customer_handoff",
        "signature_or_no_signature_reason",
    ]
    assert [item["key"] for item in packet["evidence_requirements"]["required_evidence"]] == expected_keys
    assert packet["evidence_requirements"]["missing_evidence_keys"] == sorted(expected_keys)
    assert [item["key"] for item in packet["checklist"]["required_items"]] == [
        "work_performed",
        "parts_used_or_needed",
        "resolution_status",
        "onsite_photos_after",
        "billing_authorization",
    ]
    actions = {a["tool_name"]: a for a in packet["actions"]}
    assert actions["closeout.add_evidence"]["enabled"] is True
    assert actions["tech.check_in"]["policy_error"]["code"] == "INVALID_STATE_TRANSITION"
    complete = actions["tech.complete"]["policy_error"]
    assert complete["code"] == "CLOSEOUT_REQUIREMENTS_INCOMPLETE"
    assert complete["requirement_code"] == "MISSING_SIGNATURE_CONFIRMATION"
    assert complete["missing_evidence_keys"] == sorted(expected_keys)


def test_packet_shows_the_latest_ten_events():
    tech = TechnicianFactory()
    ticket = dispatched(tech)
    for _ in range(12):
        ticket_move(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=TEST_MOVE, apply=lambda change: None)
    packet = packet_for(actor_for(Role.DISPATCHER), Ticket.objects.get(pk=ticket.pk))
    assert len(packet["timeline"]["latest_events"]) == 10
    assert packet["timeline"]["total_events"] == 15
    assert packet["timeline"]["latest_events"][-1]["tool_name"] == "test.move"


def test_packet_is_refused_to_a_technician_on_someone_elses_job():
    ticket = dispatched(TechnicianFactory())
    with pytest.raises(DispatchError) as refused:
        packet_for(actor_for(Role.TECHNICIAN, technician=TechnicianFactory()), ticket)
    assert (refused.value.code, refused.value.status) == ("FORBIDDEN_SCOPE", 403)


def test_packet_costs_a_fixed_number_of_queries():
    tech = TechnicianFactory()
    ticket = dispatched(tech)
    actor = actor_for(Role.TECHNICIAN, technician=tech)
    with CaptureQueriesContext(connection) as few:
        packet_for(actor, ticket)
    for _ in range(20):
        ticket_move(actor=actor_for(Role.DISPATCHER), ticket_id=ticket.id, command=TEST_MOVE, apply=lambda change: None)
    with CaptureQueriesContext(connection) as many:
        packet_for(actor, ticket)
    assert len(many) == len(few) <= 10


def test_packet_with_closeout_gate_follows_the_evidence_as_it_arrives():
    from dispatch.closeout.services import evidence_add

    tech = TechnicianFactory()
    ticket = walk(dispatched(tech, incident_type="DOOR_WONT_LATCH"), TicketState.ON_SITE, TicketState.IN_PROGRESS)
    actor = actor_for(Role.TECHNICIAN, technician=tech)

    def packet():
        return tech_job_packet(actor=actor, ticket=ticket, commands=COMMANDS)["packet"]

    keys = [
        "photo_before_door_edge_and_strike",
        "photo_after_latched_alignment",
        "note_adjustments_and_test_cycles",
        "signature_or_no_signature_reason",
    ]
    first = packet()
    assert sorted(first["evidence_requirements"]["missing_evidence_keys"]) == sorted(keys)
    complete = next(a for a in first["actions"] if a["tool_name"] == "tech.complete")
    assert complete["policy_error"]["requirement_code"] == "MISSING_SIGNATURE_CONFIRMATION"

    evidence_add(actor=actor, ticket_id=ticket.id, kind="SIGNATURE", uri="s3://bucket/sig.png", evidence_key=keys[3])
    evidence_add(actor=actor, ticket_id=ticket.id, kind="PHOTO", uri="s3://bucket/before.jpg", evidence_key=keys[0])
    middle = packet()
    assert middle["evidence_requirements"]["missing_evidence_keys"] == sorted(keys[1:3])
    assert [item["present"] for item in middle["evidence_requirements"]["required_evidence"]] == [
        True,
        False,
        False,
        True,
    ]
    complete = next(a for a in middle["actions"] if a["tool_name"] == "tech.complete")
    assert complete["policy_error"]["requirement_code"] == "MISSING_EVIDENCE"
    assert len(middle["evidence_requirements"]["evidence_items"]) == 2
    assert middle["evidence_requirements"]["evidence_items"][0]["metadata"]["evidence_key"] == keys[3]

    evidence_add(actor=actor, ticket_id=ticket.id, kind="PHOTO", uri="s3://bucket/after.jpg", evidence_key=keys[1])
    evidence_add(actor=actor, ticket_id=ticket.id, kind="NOTE", uri="s3://bucket/note.txt", evidence_key=keys[2])
    last = packet()
    assert last["evidence_requirements"]["missing_evidence_keys"] == []
    actions = {a["tool_name"]: a for a in last["actions"]}
    assert actions["tech.complete"]["enabled"] is True
    assert actions["closeout.candidate"]["enabled"] is True  # DOOR_WONT_LATCH is not high-risk


def test_packet_tells_an_agent_caller_that_autonomy_is_paused():
    from dispatch.closeout.services import autonomy_pause

    tech = TechnicianFactory()
    ticket = walk(dispatched(tech, incident_type="DOOR_WONT_LATCH"), TicketState.ON_SITE, TicketState.IN_PROGRESS)
    autonomy_pause(
        actor=actor_for(Role.DISPATCHER), scope_type="INCIDENT", incident_type="DOOR_WONT_LATCH", reason="Audit"
    )
    machine = actor_for(Role.DISPATCHER, actor_type="AGENT")
    packet = tech_job_packet(actor=machine, ticket=ticket, commands=COMMANDS)["packet"]
    assert packet["autonomy"]["paused"] is True
    assert packet["autonomy"]["policy_error"]["scope_id"] == "DOOR_WONT_LATCH"
    person = tech_job_packet(actor=actor_for(Role.DISPATCHER), ticket=ticket, commands=COMMANDS)["packet"]
    assert person["autonomy"]["paused"] is True  # the built-in lookup finds the same pause
