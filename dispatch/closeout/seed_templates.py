"""The seed incident templates, shipped with the code (a copy of the shared contract file)."""

from __future__ import annotations

import json
from pathlib import Path

SEED_FILE = Path(__file__).with_name("seed") / "incident_type_templates.v1.json"

# Incident types whose closeout an agent may not propose: a human reviews them.
HIGH_RISK_TYPES = frozenset({"CANNOT_SECURE_ENTRY", "FRAME_OR_GLASS_DAMAGE", "AUTO_OPERATOR_FAULT"})

NAMES = {
    "DOOR_WONT_LATCH": "Door won't latch",
    "CLOSER_LEAKING_OR_SLAMMING": "Closer leaking or slamming",
    "AUTO_OPERATOR_FAULT": "Automatic operator fault",
    "CANNOT_SECURE_ENTRY": "Cannot secure entry",
    "HARDWARE_REPLACEMENT": "Hardware replacement",
    "FRAME_OR_GLASS_DAMAGE": "Frame or glass damage",
}
DURATIONS = {
    "DOOR_WONT_LATCH": 60,
    "CLOSER_LEAKING_OR_SLAMMING": 75,
    "AUTO_OPERATOR_FAULT": 120,
    "CANNOT_SECURE_ENTRY": 90,
    "HARDWARE_REPLACEMENT": 90,
    "FRAME_OR_GLASS_DAMAGE": 150,
}
# Words in customers' messages that point at each type (intake). Migration 0004 brought existing
# databases to these lists; keep the two in step.
KEYWORDS = {
    "DOOR_WONT_LATCH": [
        "latch",
        "won't latch",
        "doesn't latch",
        "not latching",
        "latch is broken",
        "won't catch",
        "isn't catching",
        "won't close",
        "doesn't close",
        "won't shut",
        "doesn't shut",
        "won't stay closed",
        "won't stay shut",
        "strike",
        "strike plate",
        "pops open",
        "popping open",
        "sticking",
        "hard to close",
    ],
    "CLOSER_LEAKING_OR_SLAMMING": [
        "closer",
        "door closer",
        "closer arm",
        "slam",
        "slammed",
        "slamming",
        "leaking oil",
        "leaking",
        "hydraulic",
        "closes too fast",
        "closes too hard",
        "too fast",
        "swings open",
        "doesn't close by itself",
        "won't close by itself",
        "doesn't close on its own",
        "won't close on its own",
    ],
    "AUTO_OPERATOR_FAULT": [
        "automatic",
        "auto door",
        "automatic door",
        "operator",
        "opener",
        "door opener",
        "sensor",
        "motion sensor",
        "sliding door",
        "won't open",
        "stuck open",
        "push button",
        "handicap button",
        "ada button",
        "ada operator",
        "revolving door",
        "off its track",
        "off the track",
    ],
    "CANNOT_SECURE_ENTRY": [
        "can't lock",
        "cannot lock",
        "can't lock up",
        "won't lock",
        "can't secure",
        "cannot secure",
        "can't be secured",
        "cannot be secured",
        "break-in",
        "broke in",
        "broke into",
        "broken into",
        "burglary",
        "kicked in",
        "forced open",
        "forced entry",
        "pried open",
        "unsecured",
        "not secure",
    ],
    "HARDWARE_REPLACEMENT": [
        "handle",
        "door handle",
        "lever",
        "lever handle",
        "knob",
        "doorknob",
        "hinge",
        "lockset",
        "deadbolt",
        "keypad",
        "keypad lock",
        "panic bar",
        "push bar",
        "crash bar",
        "exit device",
        "replace hardware",
        "cylinder",
        "rekey",
        "kick plate",
    ],
    "FRAME_OR_GLASS_DAMAGE": [
        "glass",
        "broken glass",
        "glass panel",
        "shattered",
        "frame",
        "door frame",
        "bent frame",
        "cracked",
        "crack",
        "smashed",
        "board up",
        "window",
        "dented",
    ],
}


def seed_templates() -> list[dict]:
    """The seed file's templates with the product's defaults for the fields it does not carry."""
    data = json.loads(SEED_FILE.read_text())
    return [
        {
            "incident_type": t["incident_type"],
            "version": t["version"],
            "name": NAMES.get(t["incident_type"], t["incident_type"].replace("_", " ").capitalize()),
            "required_evidence_keys": list(t["required_evidence_keys"]),
            "required_checklist_keys": list(t["required_checklist_keys"]),
            "high_risk": t["incident_type"] in HIGH_RISK_TYPES,
            "default_duration_minutes": DURATIONS.get(t["incident_type"], 90),
            "keywords": KEYWORDS.get(t["incident_type"], []),
        }
        for t in data["templates"]
    ]


def templates_load(model) -> int:
    """Create the seed templates that do not exist yet; edits made in the admin are kept."""
    created = 0
    for spec in seed_templates():
        _obj, was_created = model.objects.get_or_create(incident_type=spec["incident_type"], defaults=spec)
        created += int(was_created)
    return created
