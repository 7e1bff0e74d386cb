"""The ticket page's timeline speaks in people's words: who did what to whom and why, in the
company's time zone, with the raw record one click away."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dispatch.scheduling.services import assignment_dispatch, schedule_confirm
from dispatch.tickets.commands import COMMANDS
from dispatch.tickets.models import AuditEvent
from dispatch.tickets.services import ticket_update_details
from dispatch.tickets.timeline import TimelineNames, event_sentence
from tests.factories import (
    TechnicianFactory,
    UserFactory,
    actor_for,
    ticket_new,
    ticket_proposed,
    ticket_scheduled,
    ticket_triaged,
)

pytestmark = pytest.mark.django_db


def timeline_html(client, ticket) -> str:
    response = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    return page[page.index('class="rd-timeline"') :].split("</ol>")[0]


def visible_text(fragment: str) -> str:
    """What a reader sees without opening anything: the raw records folded away, tags dropped."""
    folded = re.sub(r"<details.*?</details>", " ", fragment, flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", folded))).strip()


def person(username: str, first: str, last: str, role: str = "dispatcher"):
    user = UserFactory(username=username, first_name=first, last_name=last, role=role)
    return user, actor_for(role, actor_id=str(user.pk))


def test_timeline_says_who_dispatched_whom_in_words(dispatcher_client):
    _riley, riley = person("riley", "Riley", "Morgan")
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    ticket = ticket_triaged(actor=riley)

    assignment_dispatch(
        actor=riley,
        ticket_id=ticket.id,
        tech_id=luis.id,
        dispatch_mode="EMERGENCY_BYPASS",
        dispatch_rationale="store cannot be secured",
        dispatch_confirmation=True,
    )

    text = visible_text(timeline_html(dispatcher_client, ticket))
    assert "Riley Morgan dispatched Luis Ortega — emergency bypass: store cannot be secured" in text
    assert "Riley Morgan triaged the ticket as Door won't latch (emergency)" in text
    # No tool names, no codes, no ids.
    assert "assignment.dispatch" not in text and "DOOR_WONT_LATCH" not in text and "EMERGENCY_BYPASS" not in text
    assert str(luis.id) not in text


def test_timeline_says_who_confirmed_which_window_with_whom(dispatcher_client, settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    _maria, maria = person("maria", "Maria", "Chen")
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    # Tuesday 09:00–11:00 in Los Angeles, a week or more ahead.
    today = datetime.now(UTC)
    tuesday = today + timedelta(days=7 + (1 - today.weekday()) % 7)
    start = datetime(tuesday.year, tuesday.month, tuesday.day, 17, 0, tzinfo=UTC)
    end = start + timedelta(hours=2)
    option = {"start": start.isoformat(), "end": end.isoformat(), "tech_id": str(luis.id)}
    ticket = ticket_proposed(options=[option], actor=maria)

    schedule_confirm(actor=maria, ticket_id=ticket.id, start=start, end=end)

    text = visible_text(timeline_html(dispatcher_client, ticket))
    day = f"Tue {start:%b} {start.day}"
    assert f"Maria Chen confirmed the {day}, 09:00–11:00 window with Luis Ortega" in text
    assert f"Maria Chen offered the customer 1 window: {day}, 09:00–11:00 with Luis Ortega" in text


def test_timeline_shows_company_local_time_only(dispatcher_client, settings):
    settings.TIME_ZONE = "America/New_York"
    luis = TechnicianFactory(display_name="Luis Ortega", skills=["DOOR_WONT_LATCH"])
    ticket = ticket_scheduled(technician=luis)
    event = AuditEvent.objects.filter(ticket=ticket).order_by("seq").last()

    fragment = timeline_html(dispatcher_client, ticket)
    text = visible_text(fragment)

    local = event.created_at.astimezone(ZoneInfo("America/New_York"))
    assert f'datetime="{local.isoformat(timespec="seconds")}"' in fragment
    assert f"{local:%b} {local.day} {local:%H:%M}" in text
    assert "times in America/New York" in timeline_page_title(dispatcher_client, ticket)
    # No UTC timestamp anywhere a reader sees: no ISO times, no "Z", no "+00:00", no "UTC".
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text), text
    assert "+00:00" not in text and "UTC" not in text
    # The window the customer was told is written in the same zone.
    start = event.payload["start"]
    assert start.endswith("Z") or start.endswith("+00:00")
    assert "confirmed the" in text and "window" in text


def timeline_page_title(client, ticket) -> str:
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    return html_lib.unescape(page[page.index('id="timeline-h"') :].split("</h2>")[0])


def test_raw_payload_is_one_click_away(dispatcher_client):
    ticket = ticket_new(customer_phone="+15105550199", request={"summary": "Door", "customer_phone": "+15105550199"})
    event = AuditEvent.objects.get(ticket=ticket)

    fragment = timeline_html(dispatcher_client, ticket)

    raw = re.findall(
        r'<details class="rd-raw"><summary>Raw record</summary><pre class="rd-json">(.*?)</pre>', fragment, re.S
    )
    assert len(raw) == 1
    record = html_lib.unescape(raw[0])
    assert f'"summary": "{event.payload["summary"]}"' in record
    assert '"customer_phone": "[redacted]"' in record and "+15105550199" not in fragment
    # Folded away: the sentence is what shows; ids and keys only inside the disclosure.
    text = visible_text(fragment)
    assert "opened the ticket" in text and "site_id" not in text and "ticket.create" not in text
    # No inline script or style on the page (the CSP forbids both): the disclosure is plain HTML.
    assert "<script" not in fragment and "style=" not in fragment


def test_every_command_the_product_writes_reads_as_a_sentence():
    names = TimelineNames(technicians={"t-1": "Luis Ortega"}, incident_types={"DOOR_WONT_LATCH": "Door won't latch"})
    for tool, command in COMMANDS.items():
        event = SimpleNamespace(
            tool_name=tool, actor_type="HUMAN", actor_id="riley", actor_role="dispatcher", payload={}
        )
        said = event_sentence(event, names).sentence
        assert tool not in said and command.label not in said, (tool, said)
        assert not re.search(r"\b[a-z_]+\.[a-z_]+\b", said), (tool, said)
    # A tool no command knows still reads as words, never as its code.
    unknown = SimpleNamespace(
        tool_name="closeout.weigh_door", actor_type="HUMAN", actor_id="riley", actor_role="dispatcher", payload={}
    )
    assert event_sentence(unknown, names).sentence == "riley took an action on the ticket (weigh door)"


def test_an_unknown_tool_with_a_label_is_told_by_its_label(monkeypatch):
    from dispatch.tickets import commands

    made = commands.command("closeout.weigh_door", ["dispatcher"], None, None, "Weigh the door")
    monkeypatch.setitem(commands.COMMANDS, made.tool, made)
    event = SimpleNamespace(tool_name=made.tool, actor_type="HUMAN", actor_id="7", actor_role="dispatcher", payload={})
    said = event_sentence(event, TimelineNames(users={"7": "Riley Morgan"})).sentence
    assert said == "Riley Morgan used “Weigh the door”"


@pytest.mark.parametrize(
    ("tool", "payload", "expected"),
    [
        ("tech.check_in", {"reason": "Customer asked us in early"}, "checked in on site — Customer asked us in early"),
        (
            "dispatch.manual_bypass",
            {"reason": "Camera broken", "bypass_rationale": "Camera broken"},
            "completed the job without the evidence gate — Camera broken",
        ),
        (
            "ticket.close",
            {"reason": "Warranty job: nothing to bill"},
            "closed the ticket — Warranty job: nothing to bill",
        ),
        (
            "ticket.cancel",
            {"reason": "Dup", "cancellation_code": "DUPLICATE"},
            "cancelled the ticket (duplicate) — Dup",
        ),
        (
            "schedule.propose",
            {"options": [], "request": {"reason": "Earliest fit"}},
            "offered the customer times — Earliest fit",
        ),
    ],
)
def test_the_reason_is_said_wherever_an_event_gives_one(tool, payload, expected):
    event = SimpleNamespace(tool_name=tool, actor_type="HUMAN", actor_id="3", actor_role="dispatcher", payload=payload)
    assert event_sentence(event, TimelineNames(users={"3": "Riley Morgan"})).sentence == f"Riley Morgan {expected}"


@pytest.mark.parametrize(
    ("actor_type", "actor_id", "role", "tool", "payload", "expected"),
    [
        (
            "AGENT",
            "autopilot",
            "dispatcher",
            "ticket.request_info",
            {"question": "Which door?"},
            "Autopilot asked the customer: “Which door?”",
        ),
        (
            "AGENT",
            "token:night-desk",
            "agent",
            "ticket.triage",
            {"incident_type": "DOOR_WONT_LATCH", "priority": "URGENT"},
            "An agent (night-desk) triaged the ticket as Door won't latch (urgent)",
        ),
        (
            "SERVICE",
            "service:customer-reply",
            "system",
            "schedule.confirm",
            {
                "start": "2030-03-05T17:00:00Z",
                "end": "2030-03-05T19:00:00Z",
                "tech_id": "t-1",
                "request": {"reply_option": 2, "on_behalf_of": "customer"},
            },
            "The customer confirmed the Tue Mar 5, 09:00–11:00 window with Luis Ortega (replied 2)",
        ),
        (
            "SYSTEM",
            "system:wakeup-reminder",
            "system",
            "customer.remind",
            {"reminder": "day_before", "appointment_start": "2030-03-05T17:00:00Z"},
            "Real Dispatch reminded the customer of the visit on Tue Mar 5, 09:00",
        ),
        (
            "HUMAN",
            "12",
            "technician",
            "tech.pause",
            {"reason": "Waiting on a part"},
            "Luis Ortega paused work — Waiting on a part",
        ),
    ],
)
def test_each_kind_of_actor_is_named_as_people_say_it(actor_type, actor_id, role, tool, payload, expected):
    names = TimelineNames(
        users={"12": "Luis Ortega"},
        technicians={"t-1": "Luis Ortega"},
        incident_types={"DOOR_WONT_LATCH": "Door won't latch"},
        zone=ZoneInfo("America/Los_Angeles"),
    )
    event = SimpleNamespace(tool_name=tool, actor_type=actor_type, actor_id=actor_id, actor_role=role, payload=payload)
    assert event_sentence(event, names).sentence == expected


def test_the_ticket_page_costs_the_same_queries_for_a_short_and_a_long_timeline(dispatcher_client):
    _riley, riley = person("riley", "Riley", "Morgan")
    ticket = ticket_scheduled(technician=TechnicianFactory(display_name="Luis Ortega"), actor=riley)
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    dispatcher_client.get(url)  # warm per-process caches (content types)
    with CaptureQueriesContext(connection) as short:
        assert dispatcher_client.get(url).status_code == 200
    # Eight more events, by eight different people, each naming someone.
    for n in range(8):
        _user, actor = person(f"desk{n}", "Desk", f"Person {n}")
        ticket = ticket_update_details(actor=actor, ticket_id=ticket.id, changes={"summary": f"Door won't latch ({n})"})
        ticket = ticket.ticket
    with CaptureQueriesContext(connection) as long:
        page = dispatcher_client.get(url).content.decode()
    assert "Desk Person 7 corrected the summary" in visible_text(page)
    assert len(long.captured_queries) <= len(short.captured_queries), (
        len(short.captured_queries),
        len(long.captured_queries),
    )


def test_an_odd_actor_id_neither_breaks_the_timeline_nor_borrows_a_users_name():
    from dispatch.tickets.selectors import timeline_names

    user, _ = person("luis", "Luis", "Ortega")
    # "²" counts as a digit to str.isdigit() but not to int(); an agent's id may be all digits.
    events = [
        AuditEvent(actor_type="HUMAN", actor_id="²", tool_name="ticket.update_details", payload={}),
        AuditEvent(actor_type="AGENT", actor_id=str(user.pk), tool_name="ticket.update_details", payload={}),
    ]
    assert timeline_names(events).users == {}
    events.append(AuditEvent(actor_type="HUMAN", actor_id=str(user.pk), tool_name="ticket.update_details", payload={}))
    assert timeline_names(events).users == {str(user.pk): "Luis Ortega"}
