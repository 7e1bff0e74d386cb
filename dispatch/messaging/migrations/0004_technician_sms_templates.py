"""The short answers to a technician's text to the dispatch number (dispatch.scheduling.tech_replies):
the acknowledgement confirmed, or nothing waiting to acknowledge.

Plain ASCII, like the customers' texts (an em dash would make the SMS UCS-2). As in 0003, new
templates are only added: a text someone already edited in the admin is left alone.
"""
from django.db import migrations

TEMPLATES = [
    (
        "tech_ack_confirmed",
        "SMS",
        "Job acknowledged ({ticket_ref})",
        "Got it - {ticket_ref} at {address} is acknowledged.",
    ),
    (
        "tech_ack_nothing_pending",
        "SMS",
        "Nothing to acknowledge",
        "{company}: there is no new job waiting for your OK. Your message went to the dispatcher.",
    ),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, channel, subject, body in TEMPLATES:
        # By code alone, whatever languages it has since been written in.
        if not MessageTemplate.objects.filter(code=code).exists():
            MessageTemplate.objects.create(code=code, channel=channel, subject=subject, body=body)


def unseed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, _channel, _subject, body in TEMPLATES:
        MessageTemplate.objects.filter(code=code, body=body).delete()


class Migration(migrations.Migration):
    dependencies = [("messaging", "0003_scheduling_customer_templates")]

    operations = [migrations.RunPython(seed, unseed)]
