"""The answers about a customer's address (dispatch.intake.service_area): the confirmation that
states an address whose city intake took from the service area, the same statement when the
address came in a later message, and the polite answer to a request from outside the area.

Plain ASCII, like the customers' texts (an em dash would make the SMS UCS-2). As in 0003, new
templates are only added: a text someone already edited in the admin is left alone.
"""
from django.db import migrations

TEMPLATES = [
    (
        "customer_confirmation_address",
        "SMS",
        "We received your request {ticket_ref}",
        "{company}: we received your request (ref {ticket_ref}). We have {address} - reply if that's wrong. "
        "Status: {status_url}",
    ),
    (
        "address_confirm",
        "SMS",
        "The address of your request {ticket_ref}",
        "{company}: we have {address} for your request (ref {ticket_ref}) - reply if that's wrong.",
    ),
    (
        "outside_service_area",
        "SMS",
        "About your request {ticket_ref}",
        "{company}: thank you (ref {ticket_ref}). We don't serve {place} yet; a dispatcher will get back to you.",
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
    dependencies = [("messaging", "0007_provider_id_unique")]

    operations = [migrations.RunPython(seed, unseed)]
