"""Better intake keywords per incident type, written against a corpus of real-looking messages.

A template whose keywords are still exactly the first seed gets the new list (which also moves
"won't lock" from a latch fault to a door that cannot be secured); a template someone has
edited in the admin keeps its words and only gains the new ones.
"""
from django.db import migrations

FIRST_SEED = {
    "DOOR_WONT_LATCH": ["latch", "won't close", "wont close", "doesn't latch", "strike", "won't lock", "wont lock"],
    "CLOSER_LEAKING_OR_SLAMMING": ["closer", "slam", "slamming", "leaking oil", "closes too fast", "hydraulic"],
    "AUTO_OPERATOR_FAULT": ["automatic", "auto door", "operator", "sensor", "sliding door", "won't open", "stuck open"],
    "CANNOT_SECURE_ENTRY": ["can't lock", "cannot lock", "cannot secure", "can't secure", "break-in", "broken into", "unsecured"],
    "HARDWARE_REPLACEMENT": ["handle", "lever", "hinge", "lockset", "panic bar", "exit device", "replace hardware", "cylinder"],
    "FRAME_OR_GLASS_DAMAGE": ["glass", "shattered", "frame", "cracked", "smashed", "board up", "window"],
}

KEYWORDS = {
    "DOOR_WONT_LATCH": [
        "latch", "won't latch", "doesn't latch", "not latching", "latch is broken", "won't catch", "isn't catching",
        "won't close", "doesn't close", "won't shut", "doesn't shut", "won't stay closed", "won't stay shut",
        "strike", "strike plate", "pops open", "popping open", "sticking", "hard to close",
    ],
    "CLOSER_LEAKING_OR_SLAMMING": [
        "closer", "door closer", "closer arm", "slam", "slammed", "slamming", "leaking oil", "leaking", "hydraulic",
        "closes too fast", "closes too hard", "too fast", "swings open", "doesn't close by itself",
        "won't close by itself", "doesn't close on its own", "won't close on its own",
    ],
    "AUTO_OPERATOR_FAULT": [
        "automatic", "auto door", "automatic door", "operator", "opener", "door opener", "sensor", "motion sensor",
        "sliding door", "won't open", "stuck open", "push button", "handicap button", "ada button", "ada operator",
        "revolving door", "off its track", "off the track",
    ],
    "CANNOT_SECURE_ENTRY": [
        "can't lock", "cannot lock", "can't lock up", "won't lock", "can't secure", "cannot secure", "can't be secured",
        "cannot be secured", "break-in", "broke in", "broke into", "broken into", "burglary", "kicked in", "forced open",
        "forced entry", "pried open", "unsecured", "not secure",
    ],
    "HARDWARE_REPLACEMENT": [
        "handle", "door handle", "lever", "lever handle", "knob", "doorknob", "hinge", "lockset", "deadbolt", "keypad",
        "keypad lock", "panic bar", "push bar", "crash bar", "exit device", "replace hardware", "cylinder", "rekey",
        "kick plate",
    ],
    "FRAME_OR_GLASS_DAMAGE": [
        "glass", "broken glass", "glass panel", "shattered", "frame", "door frame", "bent frame", "cracked", "crack",
        "smashed", "board up", "window", "dented",
    ],
}


def update(apps, schema_editor):
    IncidentTemplate = apps.get_model("closeout", "IncidentTemplate")
    for template in IncidentTemplate.objects.filter(incident_type__in=KEYWORDS):
        new = KEYWORDS[template.incident_type]
        current = list(template.keywords or [])
        if current == FIRST_SEED.get(template.incident_type):
            template.keywords = list(new)
        else:
            template.keywords = current + [word for word in new if word not in current]
        template.save(update_fields=["keywords"])


def restore(apps, schema_editor):
    IncidentTemplate = apps.get_model("closeout", "IncidentTemplate")
    for template in IncidentTemplate.objects.filter(incident_type__in=FIRST_SEED):
        if list(template.keywords or []) == KEYWORDS.get(template.incident_type):
            template.keywords = list(FIRST_SEED[template.incident_type])
            template.save(update_fields=["keywords"])


class Migration(migrations.Migration):
    dependencies = [("closeout", "0003_evidence_invoice_packet_autonomy")]

    operations = [migrations.RunPython(update, restore)]
