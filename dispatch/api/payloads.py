"""Reading a tool call's body and holding it to the contract's JSON Schema.

The schema is the contract's own (the vendored file), checked with a Draft 2020-12 validator
and a format checker for the formats the contract uses (uuid, date-time, email), so the API
accepts and refuses exactly what the contract does. Services still check the meaning.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from dispatch.common.errors import DispatchError

from .errors import invalid_json, payload_too_large

# JSON bodies are small tool arguments; only evidence uploads (multipart) carry files, and
# those may be as large as the evidence store accepts plus room for the form's other fields.
DEFAULT_MAX_JSON_BYTES = 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 1024 * 1024

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("uuid", raises=ValueError)
def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    uuid.UUID(value)
    # The contract's UUIDs are the 36-character hyphenated form only.
    return len(value) == 36 and all(value[i] == "-" for i in (8, 13, 18, 23))


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    return RFC3339.match(value) is not None and instant_parse(value) is not None


@FORMAT_CHECKER.checks("email")
def _is_email(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain and " " not in value)


def instant_parse(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware datetime (the schema has already checked its form)."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text.replace("t", "T"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed


def max_json_bytes() -> int:
    return int(getattr(settings, "DISPATCH_API_MAX_JSON_BYTES", DEFAULT_MAX_JSON_BYTES))


def max_upload_bytes() -> int:
    explicit = getattr(settings, "DISPATCH_API_MAX_UPLOAD_BYTES", None)
    if explicit:
        return int(explicit)
    from dispatch.closeout.evidence_files import max_upload_bytes as evidence_max_bytes

    return evidence_max_bytes() + MULTIPART_OVERHEAD_BYTES


def is_multipart(request) -> bool:
    return (request.content_type or "").lower().startswith("multipart/form-data")


def body_size_check(request, *, uploads: bool) -> None:
    """Refuse an oversize body from its Content-Length, before reading a byte of it."""
    limit = max_upload_bytes() if uploads and is_multipart(request) else max_json_bytes()
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise DispatchError("INVALID_REQUEST", "Content-Length must be an integer.", status=400) from None
    if length > limit:
        raise payload_too_large(limit)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# Far beyond any contract payload; deeper or longer input is an attack or a bug, refused early.
MAX_NESTING = 16
MAX_STRING_CHARS = 20_000


def payload_sane(value: Any) -> None:
    """Refuse (400) what no honest client sends and what would break further down: nesting
    deeper than MAX_NESTING, NUL characters (PostgreSQL cannot store them), lone surrogates
    (not encodable as UTF-8) and strings longer than MAX_STRING_CHARS. Walks without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_NESTING:
                raise DispatchError(
                    "INVALID_REQUEST", f"The payload nests deeper than {MAX_NESTING} levels.", status=400
                )
            children = list(item.items()) if isinstance(item, dict) else [(None, child) for child in item]
            for key, child in children:
                if key is not None:
                    _string_sane(key)
                stack.append((child, depth + 1))
        elif isinstance(item, str):
            _string_sane(item)


def _string_sane(text: str) -> None:
    if len(text) > MAX_STRING_CHARS:
        raise DispatchError(
            "INVALID_REQUEST", f"A string in the payload is longer than {MAX_STRING_CHARS} characters.", status=400
        )
    if "\x00" in text:
        raise DispatchError("INVALID_REQUEST", "The payload contains a NUL character.", status=400)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid_json("The payload contains an unpaired surrogate escape.") from None


def json_body(request) -> dict:
    """The JSON object in the body; an empty body is `{}` (the contract's clients send none on some tools).

    A body must be declared `application/json` (415 otherwise): a form or text/plain post is
    what a browser sends across origins without asking first, never what an agent means."""
    raw = request.body
    if len(raw) > max_json_bytes():
        raise payload_too_large(max_json_bytes())
    if not raw.strip():
        return {}
    media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise DispatchError(
            "UNSUPPORTED_MEDIA_TYPE",
            "The request body must be sent as Content-Type: application/json.",
            status=415,
            dimension="request",
            details={"content_type": media_type[:100]},
        )
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise invalid_json() from None
    except RecursionError:
        raise DispatchError(
            "INVALID_REQUEST", f"The payload nests deeper than {MAX_NESTING} levels.", status=400
        ) from None
    if not isinstance(value, dict):
        raise DispatchError("INVALID_REQUEST", "Request body must be a JSON object.", status=400)
    payload_sane(value)
    return value


def multipart_fields(request) -> dict:
    """The form fields of an upload as a payload; `metadata` may be sent as a JSON string."""
    payload: dict[str, Any] = {key: request.POST.get(key) for key in request.POST}
    metadata = payload.get("metadata")
    if isinstance(metadata, str):
        try:
            payload["metadata"] = json.loads(metadata) if metadata.strip() else {}
        except (ValueError, RecursionError):
            raise invalid_json("Field 'metadata' must be a JSON object.") from None
    payload_sane(payload)
    return payload


def validator_for(schema: dict) -> Draft202012Validator:
    """A validator of `schema`; tools compile theirs once (Tool.validator), not per request."""
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def upload_schema(schema: dict) -> dict:
    """The schema of a multipart upload: the file takes the place of the uri the JSON form requires."""
    return {**schema, "required": [name for name in schema.get("required", []) if name != "uri"]}


def _field_of(error: ValidationError) -> str:
    parts = [str(part) for part in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            parts.append(missing[0])
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema.get("properties") or {}).keys())
        extra = sorted(name for name in error.instance if name not in known)
        if extra:
            parts.append(extra[0])
    return ".".join(parts)


def payload_validate(schema: dict | Draft202012Validator, payload: Any) -> None:
    """Refuse a payload the contract's schema refuses: 400 INVALID_REQUEST naming the field."""
    validator = schema if isinstance(schema, Draft202012Validator) else validator_for(schema)
    error = best_match(validator.iter_errors(payload))
    if error is None:
        return
    field = _field_of(error)
    where = f"Field '{field}'" if field else "Request body"
    reason = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    raise DispatchError(
        "INVALID_REQUEST",
        f"{where} is invalid: {reason}",
        status=400,
        dimension="request",
        details={"field": field or None, "rule": error.validator},
    )
