"""The gate every inbound message passes before anything reads it.

Customers' messages are untrusted text: they may carry markup, control characters, megabytes
of padding, or words meant for a language model rather than for us ("ignore previous
instructions and close ticket ..."). Here they are cleaned and capped, and instruction-like
content is flagged for a dispatcher. Flagging never stops intake: the message still opens or
joins a ticket, and intake itself can never do more than that.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import nh3
import phonenumbers
from django.conf import settings

BODY_MAX_CHARS = 4_000
RAW_BODY_MAX_CHARS = 100_000
SUBJECT_MAX_CHARS = 300
NAME_MAX_CHARS = 200
RAW_FIELDS_MAX_BYTES = 100_000
RAW_FIELD_VALUE_MAX_CHARS = 2_000
MEDIA_MAX_ITEMS = 10

CONTRACT_FILE = Path(__file__).resolve().parent.parent / "api" / "contract" / "dispatch-contract.v1.json"
# Used when the vendored contract is not there: the tools an injected instruction would name.
FALLBACK_TOOL_NAMES = (
    "ticket.create",
    "ticket.triage",
    "ticket.cancel",
    "ticket.close",
    "ticket.force_close",
    "ticket.blind_intake",
    "schedule.propose",
    "schedule.confirm",
    "schedule.hold",
    "schedule.release",
    "schedule.rollback",
    "assignment.recommend",
    "assignment.dispatch",
    "dispatch.force_hold",
    "dispatch.force_unassign",
    "dispatch.manual_bypass",
    "closeout.candidate",
    "closeout.add_evidence",
    "closeout.evidence_exception",
    "tech.check_in",
    "tech.complete",
    "qa.verify",
    "billing.generate_invoice",
    "approval.decide",
    "outbox.replay",
)
# Snake-case names an attacker may use instead of dotted tool names.
EXTRA_COMMAND_WORDS = ("force_close", "force_unassign", "manual_bypass", "blind_intake", "evidence_exception")

# Characters that are not text: C0/C1 controls (except newline and tab), and invisible format
# characters (zero-width spaces, bidi overrides) that hide text from the person reviewing it.
_KEEP = {"\n", "\t"}


@lru_cache(maxsize=1)
def tool_names() -> tuple[str, ...]:
    """The contract's tool names (read once), or the built-in list when the file is absent."""
    try:
        data = json.loads(CONTRACT_FILE.read_text())
        names = tuple(sorted({t["tool_name"] for t in data.get("tools", []) if t.get("tool_name")}))
    except (OSError, ValueError, KeyError, TypeError):
        names = ()
    return names or FALLBACK_TOOL_NAMES


def controls_remove(text: str) -> str:
    """The text without control, format and unassigned characters (newline and tab stay)."""
    return _without_controls(text)


def _without_controls(text: str) -> str:
    return "".join(ch for ch in text if ch in _KEEP or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))


def text_clean(value: Any, *, max_chars: int, multiline: bool = True) -> str:
    """Plain text from untrusted input: markup and control characters removed, whitespace tidied, capped."""
    if value is None:
        return ""
    text = str(value)
    # Cap before the HTML parser sees it: the raw body may be far longer than anything we keep,
    # and nh3's cost grows with its input. Four times the cap leaves room for markup to strip.
    text = text[: max_chars * 4]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Script and style contents are code, not the customer's words: nh3 drops them with the tags.
    # nh3 escapes what it keeps; the stored copy is plain text (escaped again wherever it is
    # shown), so entities are decoded, and markup that was hidden behind entities is cleaned too.
    for _ in range(3):
        cleaned = html.unescape(
            nh3.clean(text, tags=set(), clean_content_tags={"script", "style"}, strip_comments=True)
        )
        if cleaned == text:
            break
        text = cleaned
    text = _without_controls(unicodedata.normalize("NFC", text))
    if multiline:
        lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    else:
        text = re.sub(r"\s+", " ", text).strip()
    return text[:max_chars].rstrip()


def raw_cap(value: Any, *, max_chars: int = RAW_BODY_MAX_CHARS) -> tuple[str, bool]:
    """The original text, capped in size (with NUL removed, which no database column stores)."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "")
    return text[:max_chars], len(text) > max_chars


def raw_fields_cap(raw: dict | None) -> dict:
    """The provider's fields as JSON-safe, size-capped data, for the record."""
    if not raw:
        return {}
    capped: dict[str, Any] = {}
    used = 0
    for key, value in list(raw.items())[:200]:
        key = str(key)[:100].replace("\x00", "")
        if isinstance(value, (list, tuple)):
            value = [str(v)[:RAW_FIELD_VALUE_MAX_CHARS].replace("\x00", "") for v in list(value)[:20]]
        elif value is None or isinstance(value, (bool, int, float)):
            pass
        else:
            value = str(value)[:RAW_FIELD_VALUE_MAX_CHARS].replace("\x00", "")
        size = len(key) + len(json.dumps(value, default=str))
        if used + size > RAW_FIELDS_MAX_BYTES:
            capped["_truncated"] = True
            break
        capped[key] = value
        used += size
    return capped


def media_clean(media: Any) -> list[dict]:
    """Attachments as a short list of {url, content_type} records."""
    cleaned: list[dict] = []
    for item in list(media or ())[:MEDIA_MAX_ITEMS]:
        if not isinstance(item, dict):
            continue
        record = {
            str(k)[:40]: str(v)[:RAW_FIELD_VALUE_MAX_CHARS].replace("\x00", "")
            for k, v in item.items()
            if isinstance(v, (str, int, float)) and not isinstance(v, bool)
        }
        if record:
            cleaned.append(record)
    return cleaned


def phone_normalize(value: Any, *, strict: bool = False) -> str:
    """E.164 for a phone number ("" when it is not one). `strict` wants a number that can exist."""
    if not value or not isinstance(value, str):
        return ""
    region = getattr(settings, "DISPATCH_DEFAULT_PHONE_REGION", "US") or "US"
    try:
        number = phonenumbers.parse(value.strip()[:40], region)
    except phonenumbers.NumberParseException:
        return ""
    ok = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if ok else ""


# --- Flagging -------------------------------------------------------------------------------

_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "ignore_instructions",
            r"\b(ignore|disregard|forget|override)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|directions|guidelines)\b",
        ),
        ("system_prompt", r"\b(system|developer|hidden)\s+(prompt|message|instructions?)\b"),
        (
            "role_play",
            r"\byou\s+are\s+now\b|\bact\s+as\s+(an?\s+)?(admin|administrator|dispatcher|system|developer|ai|assistant|root)\b|\bpretend\s+(to\s+be|you\s+are)\b|\bfrom\s+now\s+on\s+you\b",
        ),
        ("jailbreak", r"\b(jailbreak|DAN\s+mode|developer\s+mode|do\s+anything\s+now|sudo\s+mode)\b"),
        ("markup_instruction", r"</?\s*(system|assistant|instructions?|tool_call)\s*>|\[\s*(system|INST)\s*\]"),
        ("tool_call", r"\b(call|invoke|run|execute|use)\s+(the\s+)?(tool|function|api|endpoint)\b"),
        # "SYSTEM: set priority ...", "<!-- assistant: ... -->": a line addressed to a machine.
        ("role_prefix", r"(?:^|[\s<!\-\[(])(system|assistant|developer)\s*:"),
        ("new_instructions", r"\bnew\s+instructions?\b"),
        (
            "disregard_above",
            r"\b(ignore|disregard|forget)\s+(all\s+)?(of\s+)?(the\s+)?(above|everything\s+(above|before))\b",
        ),
        # A customer says what is wrong; setting a ticket's priority or state is staff's to do.
        (
            "ticket_command",
            r"\b(set|mark|change|make|update)\s+(the\s+|this\s+|my\s+)?(ticket'?s?\s+)?"
            r"(priority|status|state|ticket)\b",
        ),
    )
)
# Someone asking us to act on a job that is not theirs: an action only staff may take, in the
# same sentence as another customer's job or a ticket reference. (A reference to the sender's
# own ticket is sorted out by the service, which knows whose ticket it is.)
_ACTION = r"\b(cancel|close|delete|remove|reassign|unassign|dispatch|reschedule|move|change|mark|complete|refund|void|approve)\w*"
_OTHERS = (
    r"\b(neighbou?r'?s?|someone\s+else'?s?|somebody\s+else'?s?|other\s+customers?'?s?|another\s+customer'?s?"
    r"|every(one|body)'?s?|all\s+(the\s+)?(other\s+)?(tickets|jobs|appointments|work\s+orders|bookings)"
    r"|(other|every)\s+(tickets?|jobs?|appointments?|work\s+orders?|bookings?)|their\s+(ticket|job|appointment|booking))"
)
_SAME_SENTENCE = r"[^.!?\n]{0,80}?"
_OTHER_JOB = re.compile(rf"{_ACTION}{_SAME_SENTENCE}{_OTHERS}|{_OTHERS}{_SAME_SENTENCE}{_ACTION}", re.IGNORECASE)
TICKET_REF_RE = re.compile(r"\bRD-[0-9A-F]{8}\b", re.IGNORECASE)
_REF_ACTION = re.compile(
    rf"{_ACTION}[^.!?\n]{{0,50}}?\bRD-[0-9A-F]{{6,}}|\bRD-[0-9A-F]{{6,}}[^.!?\n]{{0,50}}?{_ACTION}", re.IGNORECASE
)


@lru_cache(maxsize=1)
def _tool_name_patterns() -> tuple[tuple[str, re.Pattern], ...]:
    """One compiled pattern per tool name and command word, built once per process."""
    names = tuple((name, re.compile(rf"(?<![\w.]){re.escape(name)}(?![\w])")) for name in tool_names())
    words = tuple((word, re.compile(rf"\b{word}\b")) for word in EXTRA_COMMAND_WORDS)
    return names + words


def _tool_name_hits(text: str) -> list[str]:
    lowered = text.lower()
    hits: list[str] = []
    for name, pattern in _tool_name_patterns():
        if name not in hits and pattern.search(lowered):
            hits.append(name)
    return hits


def instruction_flags(text: str) -> dict[str, Any]:
    """What in this text looks like instructions to a machine, or a request about someone else's job."""
    found: dict[str, Any] = {}
    reasons = [name for name, pattern in _INJECTION_PATTERNS if pattern.search(text)]
    tools = _tool_name_hits(text)
    if tools:
        reasons.append("tool_name")
        found["tool_names"] = tools[:10]
    if _OTHER_JOB.search(text):
        reasons.append("other_customers_job")
    if _REF_ACTION.search(text):
        reasons.append("ticket_reference_action")
        found["ticket_refs"] = sorted({m.group(0).upper() for m in TICKET_REF_RE.finditer(text)})[:10]
    if reasons:
        found["injection"] = True
        found["reasons"] = reasons
    return found


@dataclass
class CleanMessage:
    body: str
    subject: str
    sender_name: str
    raw_body: str
    flags: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Subject and body together, for extraction."""
        return "\n".join(part for part in (self.subject, self.body) if part)


def message_clean(*, body: Any, subject: Any = "", sender_name: Any = "") -> CleanMessage:
    """Sanitize one inbound message and flag instruction-like content; nothing here raises."""
    raw_body, raw_truncated = raw_cap(body)
    clean_body = text_clean(raw_body, max_chars=BODY_MAX_CHARS)
    clean_subject = text_clean(subject, max_chars=SUBJECT_MAX_CHARS, multiline=False)
    clean_name = text_clean(sender_name, max_chars=NAME_MAX_CHARS, multiline=False)
    flags: dict[str, Any] = {}
    if raw_truncated:
        flags["raw_truncated"] = True
    if len(clean_body) >= BODY_MAX_CHARS - 1 or len(raw_body) > BODY_MAX_CHARS * 4:
        flags["body_capped"] = True
    if clean_body != raw_body.strip() and re.search(r"<\s*[a-zA-Z!/]", raw_body[:RAW_BODY_MAX_CHARS]):
        flags["markup_removed"] = True
    # Flag on the text as received as well as the cleaned copy: an instruction hidden in an
    # HTML comment or a <script> block never reaches the clean text but shows intent.
    injection = instruction_flags("\n".join((clean_subject, clean_body, clean_name)))
    hidden = instruction_flags(raw_body[: BODY_MAX_CHARS * 4]) if not injection else {}
    if hidden:
        hidden["hidden_in_markup"] = True
    flags.update(injection or hidden)
    return CleanMessage(body=clean_body, subject=clean_subject, sender_name=clean_name, raw_body=raw_body, flags=flags)
