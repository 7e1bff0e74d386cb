"""Message texts for booking by reply: the proposal asks for a number, plus a reminder for an
unanswered proposal and the short answers to a reply that cannot be booked.

As in 0002, a text someone already edited in the admin is left alone: `proposal_windows` is
rewritten only while it still reads exactly as seeded, and new templates are only added.
"""
from django.db import migrations

PROPOSAL_WINDOWS_SEEDED = (
    "{company}: we can come {windows}. Please reply with the time that suits you (ref {ticket_ref})."
)
# {windows} is rendered as "1) Tue Mar 3, 9-11 AM; 2) Wed Mar 4, 1-3 PM", so the customer
# answers with the number, which intake turns into reply_option.
PROPOSAL_WINDOWS = (
    "{company}: we can come {windows}. Reply with the number of the time that suits you (ref {ticket_ref})."
)

TEMPLATES = [
    (
        "proposal_reminder",
        "SMS",
        "Which time suits you? ({ticket_ref})",
        "{company}: we have not heard back about your visit (ref {ticket_ref}). "
        "We can come {windows}. Reply with the number.",
    ),
    (
        "proposal_reply_help",
        "SMS",
        "Which time suits you? ({ticket_ref})",
        "{company}: sorry, we did not catch that (ref {ticket_ref}). Reply with the number of a time: {windows}.",
    ),
    (
        "proposal_reply_unavailable",
        "SMS",
        "That time is no longer available ({ticket_ref})",
        "{company}: sorry, that time is no longer available (ref {ticket_ref}). We will send you new times shortly.",
    ),
    (
        "already_booked",
        "SMS",
        "Your visit is already booked ({ticket_ref})",
        "{company}: you are already booked for {window} (ref {ticket_ref}). Reply here if you need to change it.",
    ),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    seeded = MessageTemplate.objects.filter(code="proposal_windows", body=PROPOSAL_WINDOWS_SEEDED)
    seeded.update(body=PROPOSAL_WINDOWS)
    for code, channel, subject, body in TEMPLATES:
        # By code alone, whatever languages it has since been written in.
        if not MessageTemplate.objects.filter(code=code).exists():
            MessageTemplate.objects.create(code=code, channel=channel, subject=subject, body=body)


def unseed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    MessageTemplate.objects.filter(code="proposal_windows", body=PROPOSAL_WINDOWS).update(body=PROPOSAL_WINDOWS_SEEDED)
    for code, _channel, _subject, body in TEMPLATES:
        MessageTemplate.objects.filter(code=code, body=body).delete()


class Migration(migrations.Migration):
    dependencies = [("messaging", "0002_seed_templates_and_sweep")]

    operations = [migrations.RunPython(seed, unseed)]
