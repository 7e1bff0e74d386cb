"""Who may call the toolset: API tokens, JWTs, development headers, scope and technicians."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch.api.models import ApiToken
from dispatch.api.services import api_token_revoke, token_digest
from dispatch.tickets.models import AuditEvent
from tests.factories import (
    SiteFactory,
    TechnicianFactory,
    UserFactory,
    api_token_for,
    jwt_for,
    ticket_at,
    ticket_new,
)

pytestmark = pytest.mark.django_db

TRIAGE = {"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def triage(client: Client, ticket_id, headers: dict, payload: dict | None = None):
    return client.post(
        f"/api/v1/tickets/{ticket_id}/triage",
        data=payload or TRIAGE,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **headers,
    )


def get_ticket(client: Client, ticket_id, headers: dict):
    return client.get(f"/api/v1/tickets/{ticket_id}", **headers)


def code_of(response) -> str | None:
    return response.json().get("error", {}).get("code")


# --- API tokens ------------------------------------------------------------------------------


def test_a_token_acts_with_its_role_and_is_recorded_on_the_audit_trail(client):
    ticket = ticket_new()
    response = triage(client, ticket.id, bearer(api_token_for("agent", name="openclaw-agent")))
    assert response.status_code == 200
    assert response.json()["state"] == "TRIAGED"
    event = AuditEvent.objects.filter(ticket=ticket).latest("seq")
    assert (event.tool_name, event.actor_role, event.actor_type, event.actor_id) == (
        "ticket.triage",
        "agent",
        "AGENT",
        "token:openclaw-agent",
    )
    assert ApiToken.objects.get(name="openclaw-agent").last_used_at is not None


def test_a_token_is_stored_only_as_its_hash():
    plaintext = api_token_for("dispatcher", name="desk")
    row = ApiToken.objects.get(name="desk")
    assert plaintext.startswith("rd_") and len(plaintext) > 40
    assert row.token_hash == token_digest(plaintext)
    assert plaintext not in {row.token_hash, row.prefix} and plaintext.startswith(row.prefix)
    assert not any(plaintext in str(value) for value in ApiToken.objects.values().get().values())


def test_a_revoked_token_is_refused(client):
    ticket = ticket_new()
    plaintext = api_token_for("dispatcher", name="old-laptop")
    api_token_revoke(token=ApiToken.objects.get(name="old-laptop"))
    response = get_ticket(client, ticket.id, bearer(plaintext))
    assert response.status_code == 401
    assert code_of(response) == "INVALID_AUTH_TOKEN"


def test_a_token_in_use_is_refused_on_the_very_next_request_once_revoked(client):
    ticket = ticket_new()
    plaintext = api_token_for("dispatcher", name="shared-laptop")
    assert get_ticket(client, ticket.id, bearer(plaintext)).status_code == 200
    # Revoked elsewhere (the admin, another server process): nothing about the token is remembered here.
    ApiToken.objects.filter(name="shared-laptop").update(revoked_at=timezone.now())
    response = triage(client, ticket.id, bearer(plaintext))
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN")
    assert code_of(get_ticket(client, ticket.id, bearer(plaintext))) == "INVALID_AUTH_TOKEN"


def test_the_token_of_a_deactivated_user_is_refused(client):
    ticket = ticket_new()
    user = UserFactory()
    plaintext = api_token_for("dispatcher", user=user)
    response = get_ticket(client, ticket.id, bearer(plaintext))
    assert response.status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert code_of(get_ticket(client, ticket.id, bearer(plaintext))) == "INVALID_AUTH_TOKEN"


def test_a_users_token_acts_as_that_user_with_the_tokens_scope(client):
    site = SiteFactory()
    ticket = ticket_new(site=site)
    user = UserFactory()
    plaintext = api_token_for("agent", user=user, account_ids=[site.account_id])
    assert triage(client, ticket.id, bearer(plaintext)).status_code == 200
    event = AuditEvent.objects.filter(ticket=ticket).latest("seq")
    assert (event.actor_id, event.actor_role, event.actor_type) == (str(user.pk), "agent", "AGENT")
    assert code_of(get_ticket(client, ticket_new().id, bearer(plaintext))) == "FORBIDDEN_SCOPE"


def test_a_token_records_its_use_at_most_once_a_minute(client):
    ticket = ticket_new()
    plaintext = api_token_for("dispatcher", name="desk-2")
    assert ApiToken.objects.get(name="desk-2").last_used_at is None
    get_ticket(client, ticket.id, bearer(plaintext))
    first_use = ApiToken.objects.get(name="desk-2").last_used_at
    assert first_use is not None
    with CaptureQueriesContext(connection) as queries:
        get_ticket(client, ticket.id, bearer(plaintext))
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert ApiToken.objects.get(name="desk-2").last_used_at == first_use
    ApiToken.objects.filter(name="desk-2").update(last_used_at=first_use - timedelta(minutes=5))
    get_ticket(client, ticket.id, bearer(plaintext))
    assert ApiToken.objects.get(name="desk-2").last_used_at > first_use


def test_an_unknown_token_is_refused(client):
    response = get_ticket(client, uuid.uuid4(), bearer("rd_" + "x" * 43))
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN")


def test_a_non_bearer_authorization_header_is_refused(client):
    response = get_ticket(client, uuid.uuid4(), {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"})
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN")


def test_a_scoped_token_acts_only_on_its_accounts(client):
    mine, theirs = SiteFactory(), SiteFactory()
    headers = bearer(api_token_for("dispatcher", account_ids=[mine.account_id]))
    assert get_ticket(client, ticket_new(site=mine).id, headers).status_code == 200
    other = ticket_new(site=theirs)
    for response in (get_ticket(client, other.id, headers), triage(client, other.id, headers)):
        assert response.status_code == 403
        assert code_of(response) == "FORBIDDEN_SCOPE"
        assert response.json()["error"]["policy_error"] == {"code": "FORBIDDEN_SCOPE", "dimension": "scope"}


def test_a_site_scoped_token_sees_only_its_sites(client):
    site = SiteFactory()
    neighbour = SiteFactory(account=site.account)
    headers = bearer(api_token_for("dispatcher", site_ids=[site.id]))
    assert get_ticket(client, ticket_new(site=site).id, headers).status_code == 200
    assert code_of(get_ticket(client, ticket_new(site=neighbour).id, headers)) == "FORBIDDEN_SCOPE"


def test_a_scoped_token_cannot_open_a_ticket_elsewhere(client):
    mine, theirs = SiteFactory(), SiteFactory()
    response = client.post(
        "/api/v1/tickets",
        data={"account_id": str(theirs.account_id), "site_id": str(theirs.id), "summary": "Door stuck"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **bearer(api_token_for("agent", account_ids=[mine.account_id])),
    )
    assert (response.status_code, code_of(response)) == (403, "FORBIDDEN_SCOPE")


def test_a_technician_token_acts_as_the_technician_on_their_own_jobs_only(client):
    technician, someone_else = TechnicianFactory(), TechnicianFactory()
    headers = bearer(api_token_for("technician", technician=technician))
    assert get_ticket(client, ticket_at("DISPATCHED", technician=technician).id, headers).status_code == 200
    response = get_ticket(client, ticket_at("DISPATCHED", technician=someone_else).id, headers)
    assert response.status_code == 403
    assert code_of(response) == "FORBIDDEN_SCOPE"


def test_a_technician_token_needs_a_technician(db):
    from dispatch.common.errors import DispatchError

    with pytest.raises(DispatchError):
        api_token_for("technician", user=UserFactory())
    with pytest.raises(DispatchError):
        api_token_for("technician")


# --- the management command and the admin ----------------------------------------------------


def test_create_api_token_prints_a_working_token_once(client):
    site = SiteFactory()
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token",
        "--role",
        "dispatcher",
        "--account",
        str(site.account_id),
        "--name",
        "night-desk",
        stdout=out,
        stderr=err,
    )
    plaintext = out.getvalue().strip()
    assert plaintext.startswith("rd_") and "\n" not in plaintext
    row = ApiToken.objects.get(name="night-desk")
    assert (row.role, row.account_ids, row.site_ids) == ("dispatcher", [str(site.account_id)], [])
    assert plaintext not in err.getvalue()
    assert get_ticket(client, ticket_new(site=site).id, bearer(plaintext)).status_code == 200


def test_create_api_token_binds_a_technician_by_username(client):
    technician = TechnicianFactory()
    out = io.StringIO()
    call_command(
        "create_api_token", "--role", "tech", "--user", technician.user.username, stdout=out, stderr=io.StringIO()
    )
    ticket = ticket_at("DISPATCHED", technician=technician)
    assert get_ticket(client, ticket.id, bearer(out.getvalue().strip())).status_code == 200


def test_create_api_token_refuses_a_bad_scope():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="UUID"):
        call_command(
            "create_api_token", "--role", "agent", "--account", "acme", stdout=io.StringIO(), stderr=io.StringIO()
        )


def test_the_admin_shows_a_new_token_once_and_stores_its_hash(client):
    admin = UserFactory(username="boss", role="admin", is_superuser=True, is_staff=True)
    client.force_login(admin)
    response = client.post(
        "/admin/api/apitoken/add/",
        {"name": "openclaw", "role": "agent", "account_ids": "", "site_ids": ""},
        follow=True,
    )
    assert response.status_code == 200
    row = ApiToken.objects.get(name="openclaw")
    shown = [str(message) for message in response.context["messages"]]
    plaintext = next(word for message in shown for word in message.split() if word.startswith("rd_"))
    assert token_digest(plaintext) == row.token_hash
    page = client.get(f"/admin/api/apitoken/{row.pk}/change/")
    assert plaintext not in page.content.decode()


def test_the_admin_revokes_tokens(client):
    admin = UserFactory(username="boss2", role="admin", is_superuser=True, is_staff=True)
    client.force_login(admin)
    plaintext = api_token_for("agent", name="leaked")
    row = ApiToken.objects.get(name="leaked")
    client.post("/admin/api/apitoken/", {"action": "revoke_tokens", "_selected_action": [str(row.pk)]})
    row.refresh_from_db()
    assert row.revoked_at is not None
    client.logout()
    assert code_of(get_ticket(client, uuid.uuid4(), bearer(plaintext))) == "INVALID_AUTH_TOKEN"


# --- JWTs --------------------------------------------------------------------------------------


def test_a_jwt_acts_with_its_role_and_subject(client):
    ticket = ticket_new()
    response = triage(client, ticket.id, bearer(jwt_for("openclaw-planner", "agent")))
    assert response.status_code == 200
    event = AuditEvent.objects.filter(ticket=ticket).latest("seq")
    assert (event.actor_id, event.actor_role, event.actor_type) == ("openclaw-planner", "agent", "AGENT")


def test_a_jwt_role_alias_is_accepted(client):
    ticket = ticket_new()
    assert triage(client, ticket.id, bearer(jwt_for("assistant-7", "assistant"))).status_code == 200
    assert AuditEvent.objects.filter(ticket=ticket).latest("seq").actor_role == "dispatcher"


def test_an_expired_jwt_is_refused(client):
    response = get_ticket(client, ticket_new().id, bearer(jwt_for("desk", "dispatcher", expires_in=-60)))
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_CLAIMS")


def test_a_jwt_signed_with_another_secret_is_refused(client):
    token = jwt_for("desk", "dispatcher", secret="someone-elses-secret-0123456789-abcdef")
    response = get_ticket(client, ticket_new().id, bearer(token))
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "desk", "role": None},
        {"sub": "desk", "role": "wizard"},
        {"sub": "", "role": "dispatcher"},
        {"sub": "desk", "role": "dispatcher", "account_ids": ["acme"]},
        {"sub": "desk", "role": "dispatcher", "site_ids": 7},
        {"sub": "desk", "role": "dispatcher", "actor_type": "ROBOT"},
        {"sub": "desk", "role": "dispatcher", "scope": "everything"},
    ],
    ids=["no role", "unknown role", "empty sub", "bad account", "bad sites", "bad actor type", "bad scope"],
)
def test_a_jwt_with_missing_or_malformed_claims_is_refused(client, claims):
    sub, role = claims.pop("sub"), claims.pop("role")
    response = get_ticket(client, ticket_new().id, bearer(jwt_for(sub, role, **claims)))
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_CLAIMS")


def test_a_jwt_without_exp_is_refused(client):
    import jwt

    token = jwt.encode({"sub": "desk", "role": "dispatcher"}, settings.DISPATCH_AUTH_JWT_SECRET, algorithm="HS256")
    assert code_of(get_ticket(client, ticket_new().id, bearer(token))) == "INVALID_AUTH_CLAIMS"


def test_an_unsigned_or_garbled_jwt_is_refused(client):
    import jwt

    unsigned = jwt.encode({"sub": "desk", "role": "dispatcher", "exp": 9999999999}, None, algorithm="none")
    for token in (unsigned, "not.a.jwt", "abc"):
        response = get_ticket(client, uuid.uuid4(), bearer(token))
        assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN"), token


def test_jwt_scope_claims_limit_the_caller(client):
    mine, theirs = SiteFactory(), SiteFactory()
    token = jwt_for("desk", "dispatcher", account_ids=[str(mine.account_id)])
    assert get_ticket(client, ticket_new(site=mine).id, bearer(token)).status_code == 200
    assert code_of(get_ticket(client, ticket_new(site=theirs).id, bearer(token))) == "FORBIDDEN_SCOPE"
    wildcard = jwt_for("desk", "dispatcher", account_ids=["*"], site_ids="*")
    assert get_ticket(client, ticket_new(site=theirs).id, bearer(wildcard)).status_code == 200


def test_jwt_issuer_and_audience_are_checked_when_configured(client, settings):
    settings.DISPATCH_AUTH_JWT_ISSUER = "https://idp.example"
    settings.DISPATCH_AUTH_JWT_AUDIENCE = "dispatch-api"
    ticket = ticket_new()
    good = jwt_for("desk", "dispatcher", iss="https://idp.example", aud=["other", "dispatch-api"])
    assert get_ticket(client, ticket.id, bearer(good)).status_code == 200
    for bad in (
        jwt_for("desk", "dispatcher", iss="https://evil.example", aud="dispatch-api"),
        jwt_for("desk", "dispatcher", iss="https://idp.example", aud="billing"),
    ):
        assert code_of(get_ticket(client, ticket.id, bearer(bad))) == "INVALID_AUTH_CLAIMS"


def test_a_technician_jwt_names_the_technician_by_username_or_id(client):
    technician = TechnicianFactory()
    ticket = ticket_at("DISPATCHED", technician=technician)
    for sub in (technician.user.username, str(technician.id)):
        assert get_ticket(client, ticket.id, bearer(jwt_for(sub, "tech"))).status_code == 200
    other = ticket_at("DISPATCHED", technician=TechnicianFactory())
    assert (
        code_of(get_ticket(client, other.id, bearer(jwt_for(technician.user.username, "technician"))))
        == "FORBIDDEN_SCOPE"
    )
    assert code_of(get_ticket(client, ticket.id, bearer(jwt_for("nobody-here", "technician")))) == "INVALID_AUTH_CLAIMS"


def test_a_deactivated_technician_no_longer_acts(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    technician = TechnicianFactory()
    ticket = ticket_at("DISPATCHED", technician=technician)
    token = bearer(api_token_for("technician", technician=technician))
    technician.is_active = False
    technician.save(update_fields=["is_active"])
    for headers in (
        token,
        bearer(jwt_for(technician.user.username, "technician")),
        dev("technician", technician.user.username),
    ):
        assert code_of(get_ticket(client, ticket.id, headers)) == "INVALID_AUTH_CLAIMS"


def test_jwts_are_refused_without_a_configured_secret(client, settings):
    token = jwt_for("desk", "dispatcher")
    settings.DISPATCH_AUTH_JWT_SECRET = ""
    response = get_ticket(client, uuid.uuid4(), bearer(token))
    assert (response.status_code, code_of(response)) == (500, "AUTH_CONFIG_ERROR")
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize(
    "junk", ["x" * 10_000, "\x00" * 50, "not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "e30.e30.e30"]
)
def test_a_junk_bearer_is_the_callers_error_even_without_a_jwt_secret(client, settings, junk):
    settings.DISPATCH_AUTH_JWT_SECRET = ""
    response = get_ticket(client, uuid.uuid4(), bearer(junk))
    assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN")


# --- development headers ---------------------------------------------------------------------


def dev(role: str, actor_id: str = "dev-user", **extra) -> dict:
    return {"HTTP_X_ACTOR_ID": actor_id, "HTTP_X_ACTOR_ROLE": role, **extra}


def test_without_credentials_the_api_asks_for_a_token(client, settings):
    settings.DISPATCH_DEV_AUTH = False
    response = get_ticket(client, ticket_new().id, {})
    assert (response.status_code, code_of(response)) == (401, "AUTH_REQUIRED")
    assert response.json()["error"]["policy_error"]["dimension"] == "auth"


def test_dev_headers_are_ignored_unless_enabled(client, settings):
    settings.DISPATCH_DEV_AUTH = False
    response = get_ticket(client, ticket_new().id, dev("dispatcher"))
    assert (response.status_code, code_of(response)) == (401, "AUTH_REQUIRED")


def test_dev_headers_act_when_enabled(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    ticket = ticket_new()
    response = triage(client, ticket.id, dev("bot", "planner-1", HTTP_X_ACTOR_TYPE="agent"))
    assert response.status_code == 200
    event = AuditEvent.objects.filter(ticket=ticket).latest("seq")
    assert (event.actor_id, event.actor_role, event.actor_type) == ("planner-1", "dispatcher", "AGENT")


def test_dev_headers_need_an_actor_and_a_known_role(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    ticket = ticket_new()
    assert code_of(get_ticket(client, ticket.id, {"HTTP_X_ACTOR_ROLE": "dispatcher"})) == "MISSING_ACTOR_CONTEXT"
    assert code_of(get_ticket(client, ticket.id, {"HTTP_X_ACTOR_ID": "someone"})) == "MISSING_ACTOR_CONTEXT"
    assert code_of(get_ticket(client, ticket.id, dev("wizard"))) == "INVALID_AUTH_CLAIMS"
    assert code_of(get_ticket(client, ticket.id, dev("dispatcher", HTTP_X_ACTOR_TYPE="robot"))) == "INVALID_AUTH_CLAIMS"


def test_dev_headers_name_a_technician_by_id_or_username(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    technician = TechnicianFactory()
    ticket = ticket_at("DISPATCHED", technician=technician)
    for name in (str(technician.id), technician.user.username):
        assert get_ticket(client, ticket.id, dev("tech", name)).status_code == 200
    other = ticket_at("DISPATCHED", technician=TechnicianFactory())
    assert code_of(get_ticket(client, other.id, dev("technician", technician.user.username))) == "FORBIDDEN_SCOPE"
    assert code_of(get_ticket(client, ticket.id, dev("technician", "ghost"))) == "INVALID_AUTH_CLAIMS"


def test_dev_scope_headers_narrow_the_actor(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    mine, theirs = SiteFactory(), SiteFactory()
    headers = dev("dispatcher", HTTP_X_ACCOUNT_SCOPE=str(mine.account_id))
    assert get_ticket(client, ticket_new(site=mine).id, headers).status_code == 200
    assert code_of(get_ticket(client, ticket_new(site=theirs).id, headers)) == "FORBIDDEN_SCOPE"
    bad = dev("dispatcher", HTTP_X_ACCOUNT_SCOPE="acme")
    assert code_of(get_ticket(client, ticket_new(site=mine).id, bad)) == "INVALID_ACTOR_CONTEXT"


def test_a_bearer_token_wins_over_dev_headers(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    ticket = ticket_new()
    headers = {**dev("dispatcher", "header-person"), **bearer(jwt_for("token-person", "agent"))}
    assert triage(client, ticket.id, headers).status_code == 200
    assert AuditEvent.objects.filter(ticket=ticket).latest("seq").actor_id == "token-person"


def test_production_settings_turn_dev_headers_off_whatever_the_environment_says():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "production-secret-for-this-check-only-0123456789",
        "ALLOWED_HOSTS": "dispatch.example",
        "DISPATCH_DEV_AUTH": "1",
    }
    env.pop("DATABASE_URL", None)
    probe = "import django; django.setup(); from django.conf import settings; print(settings.DISPATCH_DEV_AUTH)"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- request, correlation and trace ids ---------------------------------------------------------


def test_correlation_and_trace_ids_reach_the_audit_trail(client):
    ticket = ticket_new()
    key = str(uuid.uuid4())
    response = client.post(
        f"/api/v1/tickets/{ticket.id}/triage",
        data=TRIAGE,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        HTTP_X_CORRELATION_ID="conv-42",
        HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        **bearer(jwt_for("planner", "agent")),
    )
    assert response.status_code == 200
    assert response["X-Request-Id"] == key
    event = AuditEvent.objects.filter(ticket=ticket).latest("seq")
    assert (event.request_id, event.correlation_id, event.trace_id) == (
        key,
        "conv-42",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    )


def test_an_invalid_traceparent_is_not_recorded_and_a_correlation_id_is_generated(client):
    ticket = ticket_new()
    response = triage(client, ticket.id, {**bearer(jwt_for("planner", "agent")), "HTTP_TRACEPARENT": "00-zz-yy-01"})
    assert response.status_code == 200
    event = AuditEvent.objects.filter(ticket=ticket).latest("seq")
    assert event.trace_id == ""
    assert uuid.UUID(event.correlation_id)


def test_reads_get_a_fresh_request_id(client):
    ticket = ticket_new()
    headers = bearer(jwt_for("desk", "dispatcher"))
    first, second = get_ticket(client, ticket.id, headers), get_ticket(client, ticket.id, headers)
    assert uuid.UUID(first["X-Request-Id"]) != uuid.UUID(second["X-Request-Id"])


# --- the role decides before the identity behind it ------------------------------------------


def test_a_role_the_tool_refuses_is_403_before_the_identity_is_looked_up(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    ticket = ticket_new()
    unknown = "not-a-known-technician"
    for headers in (dev("technician", unknown), bearer(jwt_for(unknown, "technician"))):
        response = triage(client, ticket.id, headers)
        assert (response.status_code, code_of(response)) == (403, "TOOL_ROLE_FORBIDDEN")


def test_a_role_the_tool_allows_still_needs_a_known_identity(client, settings):
    settings.DISPATCH_DEV_AUTH = True
    ticket = ticket_at("DISPATCHED")
    for headers in (
        dev("technician", "not-a-known-technician"),
        bearer(jwt_for("not-a-known-technician", "technician")),
    ):
        response = client.post(
            f"/api/v1/tickets/{ticket.id}/tech/check-in",
            data={"timestamp": "2030-03-02T17:00:00Z"},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            **headers,
        )
        assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_CLAIMS")


def test_a_technician_token_on_a_dispatcher_tool_is_403_even_without_an_active_profile(client):
    technician = TechnicianFactory()
    token = bearer(api_token_for("technician", technician=technician))
    technician.is_active = False
    technician.save(update_fields=["is_active"])
    response = triage(client, ticket_new().id, token)
    assert (response.status_code, code_of(response)) == (403, "TOOL_ROLE_FORBIDDEN")
