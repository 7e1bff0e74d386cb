"""The outbox in the back office: the list, the replay action, and editable message texts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dispatch.messaging.models import MessageTemplate, OutboundMessage
from dispatch.messaging.services import MAX_ATTEMPTS, outbox_deliver, outbox_enqueue
from dispatch.tickets.models import AuditEvent
from tests.factories import UserFactory

Status = OutboundMessage.Status
CHANGELIST = "admin:messaging_outboundmessage_changelist"


def signed_in(client, role="admin"):
    user = UserFactory(role=role)
    client.force_login(user)
    return user


def dead_letter(live_sms, clock) -> OutboundMessage:
    live_sms.fail_with(503)
    message = outbox_enqueue(channel="SMS", recipient="+15105550142", body="Your technician is on the way.")
    for _ in range(MAX_ATTEMPTS):
        outbox_deliver(message_id=message.pk)
        clock.advance(hours=1)
    live_sms.recover()
    return message


@pytest.mark.django_db
def test_the_outbox_list_shows_status_and_filters_dead_letters(client, live_sms, clock):
    signed_in(client)
    dead = dead_letter(live_sms, clock)
    sent = outbox_enqueue(channel="SMS", recipient="+15105550199", body="Booked for Tuesday.")
    outbox_deliver(message_id=sent.pk)

    page = client.get(reverse(CHANGELIST), {"status__exact": Status.DEAD_LETTER})
    assert page.status_code == 200
    html = page.content.decode()
    assert "+15105550142" in html and "+15105550199" not in html
    assert "Dead letter" in html

    detail = client.get(reverse("admin:messaging_outboundmessage_change", args=[dead.pk]))
    assert detail.status_code == 200
    # History is read-only: no editable body field.
    assert 'name="body"' not in detail.content.decode()
    assert "Your technician is on the way." in detail.content.decode()


@pytest.mark.django_db
def test_the_replay_action_requeues_and_sends_dead_letters(
    client, live_sms, clock, sync_queue, django_capture_on_commit_callbacks
):
    signed_in(client)
    message = dead_letter(live_sms, clock)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(CHANGELIST),
            {"action": "replay_dead_letters", "_selected_action": [str(message.pk)]},
            follow=True,
        )
    assert "1 message queued again." in response.content.decode()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert len(live_sms.sent) == 1
    assert AuditEvent.objects.filter(tool_name="outbox.replay").count() == 1


@pytest.mark.django_db
def test_the_replay_action_explains_a_refusal(client, live_sms, clock):
    signed_in(client, role="dispatcher")
    message = dead_letter(live_sms, clock)
    response = client.post(
        reverse(CHANGELIST),
        {"action": "replay_dead_letters", "_selected_action": [str(message.pk)]},
        follow=True,
    )
    assert "may not use outbox.replay" in response.content.decode()
    message.refresh_from_db()
    assert message.status == Status.DEAD_LETTER
    assert not AuditEvent.objects.filter(tool_name="outbox.replay").exists()


@pytest.mark.django_db
def test_a_message_text_is_edited_in_the_admin_and_used_for_the_next_message(client):
    signed_in(client)
    template = MessageTemplate.objects.get(language="en", code="reminder")
    url = reverse("admin:messaging_messagetemplate_change", args=[template.pk])
    response = client.post(
        url,
        {
            "code": "reminder",
            "language": "en",
            "channel": "SMS",
            "subject": "Reminder",
            "body": "{company}: see you {window}! ({ticket_ref})",
        },
    )
    assert response.status_code == 302
    message = outbox_enqueue(
        channel="SMS", recipient="+15105550142", template="reminder", context={"window": "at 9", "ticket_ref": "RD-3"}
    )
    assert message.body == "Real Dispatch Door Service: see you at 9! (RD-3)"


@pytest.mark.django_db
def test_the_template_form_refuses_placeholders_that_reach_into_objects(client):
    signed_in(client)
    template = MessageTemplate.objects.get(language="en", code="reminder")
    url = reverse("admin:messaging_messagetemplate_change", args=[template.pk])
    response = client.post(
        url,
        {"code": "reminder", "language": "en", "channel": "SMS", "subject": "", "body": "{ticket.site.access_code}"},
    )
    assert response.status_code == 200
    assert "Placeholders must be plain names" in response.content.decode()
    template.refresh_from_db()
    assert "{ticket.site.access_code}" not in template.body
