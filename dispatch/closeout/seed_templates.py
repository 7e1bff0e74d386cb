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
KEYWORDS = {
    "DOOR_WONT_LATCH": ["latch", "won't close", "wont close", "doesn't latch", "strike", "won't lock", "wont lock"],
    "CLOSER_LEAKING_OR_SLAMMING": ["closer", "slam", "slamming", "leaking oil", "closes too fast", "hydraulic"],
    "AUTO_OPERATOR_FAULT": ["automatic", "auto door", "operator", "sensor", "sliding door", "won't open", "stuck open"],
    "CANNOT_SECURE_ENTRY": ["can't lock", "cannot lock", "cannot secure", "can't secure", "break-in", "broken into", "unsecured"],
    "HARDWARE_REPLACEMENT": ["handle", "lever", "hinge", "lockset", "panic bar", "exit device", "replace hardware", "cylinder"],
    "FRAME_OR_GLASS_DAMAGE": ["glass", "shattered", "frame", "cracked", "smashed", "board up", "window"],
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
