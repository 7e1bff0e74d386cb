"""Intake reads Spanish: each incident template gains the words Spanish-speaking customers use for
it (matched with accents folded, so "automática" and "automatica" are one word). And two templates
ask for more before a routine job is scheduled: a lock or key change needs someone there with the
keys (a time window), an automatic door's operator is reached from inside (access).

A few English words a batch of messages intake had never seen showed missing are added too ("pried",
"keys won't go in"). Words are only added, never removed; a template someone already gave intake needs keeps them.
"""

from django.db import migrations

SPANISH_KEYWORDS = {
    "DOOR_WONT_LATCH": [
        "no cierra", "no cierra bien", "no traba", "no engancha", "pestillo", "no queda cerrada", "no se queda cerrada",
        "se abre sola", "se abre solo", "picaporte",
    ],
    "CLOSER_LEAKING_OR_SLAMMING": [
        "cerrador", "cierrapuertas", "cierra puertas", "brazo hidraulico", "se azota", "azota", "azotando",
        "tira aceite", "tirando aceite", "gotea aceite", "cierra muy rapido", "se cierra muy rapido",
        "se cierra rapidisimo", "se cierra de golpe", "cierra muy fuerte", "golpea muy fuerte", "portazo",
    ],
    "AUTO_OPERATOR_FAULT": [
        "puerta automatica", "automatica", "corrediza", "puerta corrediza", "sensor", "boton de discapacitados",
        "boton para discapacitados", "sliding", "abridor", "motor de la puerta",
    ],
    "CANNOT_SECURE_ENTRY": [
        "no cierra con llave", "no puedo cerrar con llave", "no se puede asegurar", "no se puede cerrar",
        "no asegura", "la chapa no cierra", "la cerradura no cierra", "se metieron", "forzaron", "robo", "no tranca",
        "pried", "nobody can lock",
    ],
    "HARDWARE_REPLACEMENT": [
        "manija", "perilla", "bisagra", "cerradura", "chapa", "cambiar la chapa", "cambiar la cerradura", "cerrojo",
        "barra antipanico", "barra de panico", "cilindro", "teclado", "jaladera", "manilla", "keys won't go in",
        "key won't go in",
    ],
    "FRAME_OR_GLASS_DAMAGE": [
        "vidrio", "vidrio roto", "cristal", "cristal roto", "marco", "marco doblado", "ventana", "quebrado",
        "estrellado", "abollada",
    ],
}
INTAKE_NEEDS = {"HARDWARE_REPLACEMENT": ["time_window"], "AUTO_OPERATOR_FAULT": ["access"]}


def update(apps, schema_editor):
    IncidentTemplate = apps.get_model("closeout", "IncidentTemplate")
    for template in IncidentTemplate.objects.filter(incident_type__in=SPANISH_KEYWORDS):
        current = list(template.keywords or [])
        template.keywords = current + [w for w in SPANISH_KEYWORDS[template.incident_type] if w not in current]
        fields = ["keywords"]
        if not template.intake_needs and template.incident_type in INTAKE_NEEDS:
            template.intake_needs = list(INTAKE_NEEDS[template.incident_type])
            fields.append("intake_needs")
        template.save(update_fields=fields)


def restore(apps, schema_editor):
    IncidentTemplate = apps.get_model("closeout", "IncidentTemplate")
    for template in IncidentTemplate.objects.filter(incident_type__in=SPANISH_KEYWORDS):
        added = set(SPANISH_KEYWORDS[template.incident_type])
        template.keywords = [w for w in template.keywords or [] if w not in added]
        if template.intake_needs == INTAKE_NEEDS.get(template.incident_type):
            template.intake_needs = []
        template.save(update_fields=["keywords", "intake_needs"])


class Migration(migrations.Migration):
    dependencies = [("closeout", "0009_incident_intake_needs")]

    operations = [migrations.RunPython(update, restore)]
