"""A customer who has not answered intake's question is reminded once (scheduling's wake-ups).
An emergency's customer is not offered appointment times: the confirmation says a technician is
being found now (dispatch.intake.receive), and they are told who is coming and when as the
technician is dispatched (dispatch.scheduling.assignment). English and Spanish, plain SMS
letters; only added, as in 0003."""

from django.db import migrations

TEMPLATES = [
    (
        "needs_info_reminder",
        "en",
        "Still a question about your request {ticket_ref}",
        "{company}: we still need this to book your visit (ref {ticket_ref}). {question}",
    ),
    (
        "needs_info_reminder",
        "es",
        "Una pregunta pendiente sobre su solicitud {ticket_ref}",
        "{company}: aun necesitamos esto para agendar su visita (ref {ticket_ref}). {question}",
    ),
    (
        "customer_confirmation_emergency",
        "en",
        "We received your emergency request {ticket_ref}",
        "{company}: we got your emergency (ref {ticket_ref}). We are finding a technician now and will "
        "text you who is coming. {status_url}",
    ),
    (
        "customer_confirmation_emergency",
        "es",
        "Recibimos su solicitud de emergencia {ticket_ref}",
        "{company}: recibimos su emergencia (ref {ticket_ref}). Buscamos un tecnico ahora y le avisaremos "
        "quien va. {status_url}",
    ),
    (
        "emergency_dispatched",
        "en",
        "Help is on the way ({ticket_ref})",
        "{company}: {tech_first_name} is on the way for your emergency and should arrive around {eta} "
        "(ref {ticket_ref}).",
    ),
    (
        "emergency_dispatched",
        "es",
        "Su tecnico va en camino ({ticket_ref})",
        "{company}: {tech_first_name} va en camino por su emergencia; llegada estimada: {eta} (ref {ticket_ref}).",
    ),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, language, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            code=code, language=language, defaults={"channel": "SMS", "subject": subject, "body": body}
        )


def unseed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, language, _subject, body in TEMPLATES:
        MessageTemplate.objects.filter(code=code, language=language, body=body).delete()


class Migration(migrations.Migration):
    dependencies = [("messaging", "0011_spanish_templates")]

    operations = [migrations.RunPython(seed, unseed)]
