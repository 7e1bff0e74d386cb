"""Intake asks only what is missing, and only what a dispatcher would ask: beyond the address and the
problem, what the incident template says a routine job of its type needs (how the technician gets
to an automatic door's operator, when someone will be there for a lock change), in one short
question; the customer's free-text answer fills it. An urgent job is never held for these, and a
need unticked in the admin is not asked from the next message on."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dispatch.closeout.models import IncidentTemplate
from dispatch.intake.models import ExtractedField
from dispatch.intake.services import message_receive, missing_items
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import AuditEvent, Ticket
from dispatch.tickets.states import TicketState
from tests.factories import AccountFactory, ContactFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONE = "+15035550177"
ADDRESS = "1200 NW Everett St, Portland OR 97209"


def sms(body: str, *, sid: str, phone: str = PHONE):
    return message_receive(channel="SMS", provider_message_id=sid, sender_phone=phone, body=body)


def question(ticket) -> str:
    return OutboundMessage.objects.filter(ticket=ticket, template="needs_info").latest("created_at").body


def test_the_seeded_templates_ask_for_access_and_a_time_window_where_a_dispatcher_would():
    needs = dict(IncidentTemplate.objects.values_list("incident_type", "intake_needs"))
    assert needs["AUTO_OPERATOR_FAULT"] == ["access"]
    assert needs["HARDWARE_REPLACEMENT"] == ["time_window"]
    assert needs["DOOR_WONT_LATCH"] == [] and needs["CANNOT_SECURE_ENTRY"] == []


def test_a_lock_change_without_a_time_is_asked_when_someone_will_be_there_and_the_answer_books_it():
    first = sms(f"We need the deadbolt on our front door replaced. {ADDRESS}", sid="SM-1")
    ticket = Ticket.objects.get(pk=first.ticket.pk)
    assert ticket.incident_type == "HARDWARE_REPLACEMENT" and ticket.priority == "ROUTINE"
    assert ticket.state == TicketState.NEEDS_INFO and first.asked == ["time_window"]
    assert question(ticket).endswith(
        "Could you reply with the days and times someone will be there (for example: weekdays after 2pm, "
        "Saturday morning)?"
    )

    second = sms("tomorrow afternoon works, or friday morning", sid="SM-2")
    ticket.refresh_from_db()
    assert second.ticket.pk == ticket.pk and second.asked == []
    assert ticket.state == TicketState.READY_TO_SCHEDULE
    windows = ExtractedField.objects.get(ticket=ticket, name="time_windows").value
    assert windows[0]["label"] == "tomorrow afternoon"


def test_a_lock_change_that_gives_its_time_is_not_asked():
    result = sms(f"Please rekey the locks on our back door, anytime Saturday morning. {ADDRESS}", sid="SM-1")
    assert result.asked == [] and Ticket.objects.get(pk=result.ticket.pk).state == TicketState.READY_TO_SCHEDULE


def test_any_time_meets_the_need_for_a_time_window():
    sms(f"We need the door handle replaced at the office. {ADDRESS}", sid="SM-1")
    result = sms("any time, someone is always there", sid="SM-2")
    ticket = Ticket.objects.get(pk=result.ticket.pk)
    assert ticket.state == TicketState.READY_TO_SCHEDULE and not missing_items(ticket)
    assert ExtractedField.objects.filter(ticket=ticket, name="time_preference").exists()


def test_an_automatic_door_without_access_is_asked_and_the_free_text_answer_is_kept_for_the_technician():
    first = sms(f"The automatic sliding door at our store makes a grinding noise. {ADDRESS}", sid="SM-1")
    ticket = Ticket.objects.get(pk=first.ticket.pk)
    assert first.asked == ["access"] and ticket.state == TicketState.NEEDS_INFO
    assert "how our technician gets to the door (who to ask for, a gate or door code, opening hours)" in question(
        ticket
    )

    second = sms("Talk to Dana the manager, she's in 7 to 3", sid="SM-2")
    ticket.refresh_from_db()
    assert ticket.site.access_instructions == "Talk to Dana the manager, she's in 7 to 3"
    assert ticket.state == TicketState.READY_TO_SCHEDULE and second.asked == []
    # The access is recorded with the update that took it, in the ticket's audit trail.
    update = AuditEvent.objects.filter(ticket=ticket, tool_name="intake.update").latest("created_at")
    assert update.payload["changes"]["site_access"]["to"] == "Talk to Dana the manager, she's in 7 to 3"


def test_access_given_in_the_first_message_is_kept_and_not_asked():
    result = sms(
        f"Our automatic door sensor is not working. Ask for Priya at the front desk, we're open 8-6. {ADDRESS}",
        sid="SM-1",
    )
    ticket = Ticket.objects.get(pk=result.ticket.pk)
    assert result.asked == [] and ticket.state == TicketState.READY_TO_SCHEDULE
    assert ticket.site.access_instructions.startswith("Ask for Priya at the front desk, we're open 8-6.")


def test_an_answer_that_is_only_an_address_is_not_taken_for_access():
    sms("automatic door stuck half open, the operator hums", sid="SM-1")
    result = sms(ADDRESS, sid="SM-2")
    ticket = Ticket.objects.get(pk=result.ticket.pk)
    assert ticket.site.address_line1 == "1200 NW Everett St" and ticket.site.access_instructions == ""
    assert result.asked == ["access"]


def test_an_urgent_job_is_not_held_for_access_or_a_time():
    result = sms(f"URGENT the automatic door is stuck and we can't lock the store tonight. {ADDRESS}", sid="SM-1")
    ticket = Ticket.objects.get(pk=result.ticket.pk)
    assert ticket.priority == "EMERGENCY" and result.asked == [] and not missing_items(ticket)


def test_a_need_unticked_in_the_admin_is_not_asked_from_the_next_message_on(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    template = IncidentTemplate.objects.get(incident_type="AUTO_OPERATOR_FAULT")
    url = reverse("admin:closeout_incidenttemplate_change", args=[template.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="intake_needs"' in page.content.decode()
    form = {
        "incident_type": template.incident_type,
        "name": template.name,
        "version": template.version,
        "default_duration_minutes": template.default_duration_minutes,
        "crew_size": template.crew_size,
        "days": template.days,
        "trip_charge_cents": "",
        "required_evidence_keys": "\n".join(template.required_evidence_keys),
        "required_checklist_keys": "\n".join(template.required_checklist_keys),
        "keywords": "\n".join(template.keywords),
        "intake_needs": ["time_window"],
    }
    assert client.post(url, form).status_code == 302
    template.refresh_from_db()
    assert template.intake_needs == ["time_window"]

    result = sms(f"The automatic door opener is dead, whenever works for you. {ADDRESS}", sid="SM-1")
    assert result.asked == [] and "access" not in missing_items(Ticket.objects.get(pk=result.ticket.pk))


def test_a_need_that_is_never_answered_goes_to_a_dispatcher_after_two_questions():
    sms(f"new keypad lock needed on the side door. {ADDRESS}", sid="SM-1")
    sms("thanks", sid="SM-2")
    third = sms("ok", sid="SM-3")
    ticket = Ticket.objects.get(pk=third.ticket.pk)
    assert ticket.state == TicketState.NEEDS_INFO and third.asked == []
    assert third.message.flags["unanswered"] == ["time_window"]
    assert OutboundMessage.objects.filter(ticket=ticket, template="needs_info").count() == 2


# --- A known customer with several sites ----------------------------------------------------------


def _customer_with_two_sites():
    account = AccountFactory(name="Rose City Cafés")
    alberta = SiteFactory(
        account=account, address_line1="88 NE Alberta St", city="Portland", region="OR", postal_code="97211"
    )
    main = SiteFactory(
        account=account, address_line1="1200 SW Main St", city="Portland", region="OR", postal_code="97205"
    )
    ContactFactory(account=account, name="Jo Park", phone=PHONE, site=None)
    return alberta, main


def test_a_known_customer_is_asked_which_of_their_sites_and_a_free_text_answer_picks_it():
    alberta, _main = _customer_with_two_sites()
    first = sms("the front door won't latch again", sid="SM-1")
    ticket = Ticket.objects.get(pk=first.ticket.pk)
    assert first.asked == ["address"]
    assert question(ticket).endswith(
        "Could you reply with which address the door is at (88 NE Alberta St and 1200 SW Main St) or another address?"
    )

    second = sms("it's the one on Alberta, 97211", sid="SM-2")
    ticket.refresh_from_db()
    assert second.ticket.pk == ticket.pk and ticket.site_id == alberta.pk
    assert ticket.state == TicketState.READY_TO_SCHEDULE and second.asked == []


@pytest.mark.parametrize("answer", ["the cafe", "both of them", "the one on SW Main or Alberta"])
def test_an_answer_that_names_no_single_site_is_asked_again(answer):
    _customer_with_two_sites()
    sms("the front door won't latch again", sid="SM-1")
    second = sms(answer, sid="SM-2")
    ticket = Ticket.objects.get(pk=second.ticket.pk)
    assert not ticket.site.address_line1 and second.asked == ["address"]
