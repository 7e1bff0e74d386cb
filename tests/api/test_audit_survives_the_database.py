"""Whatever JSON a client sends, the audit event it leaves verifies after the database has stored
and handed back its payload: PostgreSQL's jsonb rewrites numbers (`1e20` comes back as an integer,
`-0.0` as `0`), so the hash must be over the form the database keeps."""

from __future__ import annotations

import json
import math
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.tickets.audit import SENSITIVE_KEY_PARTS, audit_chain_verify
from dispatch.tickets.models import AuditEvent
from tests.factories import SiteFactory, jwt_for

pytestmark = pytest.mark.django_db

AGENT = {"HTTP_AUTHORIZATION": f"Bearer {jwt_for('agent-7', 'agent')}"}


def _create(client, site, body_text: str):
    return client.post(
        "/api/v1/tickets",
        data=body_text,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **AGENT,
    )


def _body(site, extra: str) -> str:
    """A ticket.create body as raw JSON text, so numbers reach the server exactly as written."""
    return (
        f'{{"account_id": "{site.account_id}", "site_id": "{site.id}", "summary": "Front door won\'t latch"'
        + (f", {extra}" if extra else "")
        + "}"
    )


@pytest.mark.parametrize(
    "extra",
    [
        '"x_extra": 1e20',
        '"nte_cents": -0.0',
        '"x_extra": [1.0, -0.0, 2.5e-8, 1.7976931348623157e308]',
        '"x_extra": {"b": 12345678901234567890123, "a": 0.1}',
    ],
)
def test_a_ticket_created_with_numbers_jsonb_rewrites_still_verifies(client, extra):
    site = SiteFactory()
    response = _create(client, site, _body(site, extra))
    assert response.status_code == 201, response.content[:300]
    out = StringIO()
    call_command("verify_audit", stdout=out)  # raises CommandError (exit 1) on a broken chain
    event = AuditEvent.objects.get(ticket_id=response.json()["id"])
    assert json.loads(json.dumps(event.payload["request"])) == event.payload["request"]


# Keys the audit trail masks (a "token" key) would not come back as sent; they are tested elsewhere.
KEYS = st.text(max_size=8).filter(lambda key: not any(part in key.lower() for part in SENSITIVE_KEY_PARTS))
# Any JSON value: what a client may put in a field the contract leaves open.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=JSON_VALUES, nte=st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.integers(0, 10**9))
def test_any_payload_the_api_accepts_verifies_after_the_database_round_trip(client, extra, nte):
    site = SiteFactory()
    body = _body(site, f'"x_extra": {json.dumps(extra)}, "nte_cents": {json.dumps(nte)}')
    response = _create(client, site, body)
    # Refusing is fine (a NUL in a string, an amount with fractions of a cent); failing is not.
    assert response.status_code in (201, 400), response.content[:300]
    if response.status_code == 201:
        event = AuditEvent.objects.get(ticket_id=response.json()["id"])
        stored = event.payload["request"]["x_extra"]
        # The value kept is the one sent, up to the number's form (1.0 is kept as 1).
        assert json.dumps(stored, sort_keys=True) == json.dumps(_canonical(extra), sort_keys=True)
    report = audit_chain_verify()
    assert report.ok, report


def _canonical(value):
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    return value
