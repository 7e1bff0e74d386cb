"""The first answer to a customer who reports gas, fire, smoke or someone hurt
(dispatch.intake.receive): call 911 first; a dispatcher is told at once. Sent before the
confirmation of the request.

Plain ASCII, like the other texts. As in 0003, the template is only added: a text someone
already edited in the admin is left alone.
"""

from django.db import migrations

TEMPLATES = [
    (
        "call_911_first",
        "SMS",
        "Call 911 first - your request {ticket_ref}",
        "{company}: if anyone is in danger (gas, fire, smoke, injury) CALL 911 FIRST. "
        "Your request (ref {ticket_ref}) is with a dispatcher now.",
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
    dependencies = [("messaging", "0008_service_area_templates")]

    operations = [migrations.RunPython(seed, unseed)]
