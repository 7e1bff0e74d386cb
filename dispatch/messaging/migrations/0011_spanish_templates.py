"""The customer's messages in Spanish: a customer who writes in Spanish is answered in Spanish
(intake keeps the language on the ticket; the outbox picks each code's row in it).

Written without the accented vowels a phone turns into the 70-character UCS-2 encoding (a
Spanish SMS commonly leaves them out); ñ, ¿ and ¡ are in the plain SMS alphabet. As in 0003, the
rows are only added: a text someone already wrote in the admin is left alone.
"""

from django.db import migrations

TEMPLATES = [
    (
        "customer_confirmation",
        "Recibimos su solicitud {ticket_ref}",
        "{company}: gracias, recibimos su solicitud (ref {ticket_ref}). Le enviaremos horarios de visita "
        "en breve. Estado: {status_url}",
    ),
    (
        "customer_confirmation_address",
        "Recibimos su solicitud {ticket_ref}",
        "{company}: recibimos su solicitud (ref {ticket_ref}). Tenemos la direccion {address}; responda si "
        "no es correcta. Estado: {status_url}",
    ),
    (
        "needs_info",
        "Una pregunta sobre su solicitud {ticket_ref}",
        "{company}: gracias por su mensaje (ref {ticket_ref}). {question}",
    ),
    (
        "address_confirm",
        "La direccion de su solicitud {ticket_ref}",
        "{company}: tenemos {address} para su solicitud (ref {ticket_ref}); responda si no es correcta.",
    ),
    (
        "outside_service_area",
        "Sobre su solicitud {ticket_ref}",
        "{company}: gracias (ref {ticket_ref}). Todavia no damos servicio en {place}; un despachador se "
        "comunicara con usted.",
    ),
    (
        "call_911_first",
        "Llame primero al 911 - su solicitud {ticket_ref}",
        "{company}: si alguien corre peligro (gas, fuego, humo, heridos) LLAME AL 911 PRIMERO. Un "
        "despachador ya ve su solicitud (ref {ticket_ref}).",
    ),
    (
        "proposal_windows",
        "Horarios de visita para {ticket_ref}",
        "{company}: podemos ir {windows}. Responda con el numero del horario que le convenga (ref {ticket_ref}).",
    ),
    (
        "proposal_reminder",
        "¿Que horario le conviene? ({ticket_ref})",
        "{company}: no tenemos respuesta sobre su visita (ref {ticket_ref}). Podemos ir {windows}. "
        "Responda con el numero.",
    ),
    (
        "proposal_reply_help",
        "¿Que horario le conviene? ({ticket_ref})",
        "{company}: disculpe, no entendimos (ref {ticket_ref}). Responda con el numero de un horario: {windows}.",
    ),
    (
        "proposal_reply_unavailable",
        "Ese horario ya no esta disponible ({ticket_ref})",
        "{company}: disculpe, ese horario ya no esta disponible (ref {ticket_ref}). Le enviaremos nuevos "
        "horarios en breve.",
    ),
    (
        "already_booked",
        "Su visita ya esta reservada ({ticket_ref})",
        "{company}: su visita ya esta reservada para {window} (ref {ticket_ref}). Responda aqui si necesita "
        "cambiarla.",
    ),
    (
        "schedule_confirmed",
        "Su visita esta confirmada",
        "{company}: su visita esta confirmada para {window} (ref {ticket_ref}). Responda aqui si necesita "
        "cambiarla.",
    ),
    (
        "reminder",
        "Recordatorio: su visita {ticket_ref}",
        "{company}: le recordamos que su tecnico tiene cita para {window} (ref {ticket_ref}).",
    ),
    (
        "on_my_way",
        "Su tecnico va en camino",
        "{company}: {tech_first_name} va en camino; llegada estimada: {eta} (ref {ticket_ref}).",
    ),
    (
        "delay_notice",
        "Su tecnico viene con retraso",
        "{company}: disculpe, vamos con retraso. Nueva hora estimada de llegada: {eta} (ref {ticket_ref}).",
    ),
]


def seed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            code=code, language="es", defaults={"channel": "SMS", "subject": subject, "body": body}
        )


def unseed(apps, schema_editor):
    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for code, _subject, body in TEMPLATES:
        MessageTemplate.objects.filter(code=code, language="es", body=body).delete()


class Migration(migrations.Migration):
    dependencies = [("messaging", "0010_customer_language")]

    operations = [migrations.RunPython(seed, unseed)]
