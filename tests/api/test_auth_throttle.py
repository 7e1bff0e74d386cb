"""Failed authentications are limited per client address: /api/ and /mcp answer 429 AUTH_RATE_LIMITED.

The clock is moved with time-machine, never slept on: START is ten seconds into a window (windows
are aligned on multiples of their length since the epoch), so 290 seconds of it remain.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx2
import pytest
from django.core.cache import caches
from jsonschema import Draft202012Validator

from dispatch.api.mcp.calls import caller_authenticate
from dispatch.api.models import ApiToken
from dispatch.api.openapi import openapi_document
from dispatch.api.services import api_token_revoke
from dispatch.common.errors import DispatchError
from dispatch.common.throttle import FixedWindow, WindowCount
from tests.factories import TechnicianFactory, api_token_for, jwt_for, ticket_new
from tests.mcp.conftest import mcp_url  # noqa: F401  (the live MCP server fixture)

pytestmark = pytest.mark.django_db

WINDOW = 300
START = datetime(2030, 1, 1, 0, 0, 10, tzinfo=UTC)  # 2030-01-01T00:00:00Z is a multiple of 300 s
REMAINING = 290
LIMIT = 3
OTHER_SECRET = "another-secret-of-sufficient-length-0123"
TOOLS = "/api/v1/tools"
COCKPIT = "/api/v1/ux/dispatcher/cockpit"


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def limit(settings):
    settings.DISPATCH_API_AUTH_FAILURE_LIMIT = LIMIT
    settings.DISPATCH_API_AUTH_FAILURE_WINDOW_SECONDS = WINDOW
    return LIMIT


def bearer(token: str, **extra) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", **extra}


def code_of(response) -> str | None:
    return response.json().get("error", {}).get("code")


def fail(client, times: int, **extra) -> None:
    for _ in range(times):
        response = client.get(TOOLS, **bearer("rd_not-a-token", **extra))
        assert (response.status_code, code_of(response)) == (401, "INVALID_AUTH_TOKEN"), response.content


def assert_rate_limited(response, retry_after: int = REMAINING) -> dict:
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "AUTH_RATE_LIMITED"
    assert error["policy_error"] == {"code": "AUTH_RATE_LIMITED", "dimension": "auth"}
    assert error["retry_after_seconds"] == retry_after
    assert response["Retry-After"] == str(retry_after)
    assert error["request_id"] == response["X-Request-Id"]
    envelope = openapi_document()["components"]["schemas"]["ErrorEnvelope"]
    assert not list(Draft202012Validator(envelope).iter_errors(response.json()))
    return error


# --- the common counter ----------------------------------------------------------------------


def test_the_counter_counts_per_purpose_and_client_and_says_what_is_left_of_the_window(frozen):
    window = FixedWindow("test-purpose", 60)
    # 2030-01-01T00:00:10Z is 10 s into a 60 s window too.
    assert window.count("203.0.113.7") == WindowCount(count=0, retry_after=50)
    assert [window.hit("203.0.113.7").count for _ in range(3)] == [1, 2, 3]
    assert window.count("203.0.113.7") == WindowCount(count=3, retry_after=50)
    # Reading does not count; other clients and other purposes are counted apart.
    assert window.count("203.0.113.7").count == 3
    assert window.count("198.51.100.20").count == 0
    assert FixedWindow("other-purpose", 60).count("203.0.113.7").count == 0
    assert FixedWindow("test-purpose", 120).count("203.0.113.7").count == 0
    # Any text is a client (an IPv6 address, an empty one).
    assert window.hit("2001:db8::1").count == 1
    assert window.hit("").count == 1


def test_the_window_ends_on_its_boundary_and_the_remaining_seconds_round_up(frozen):
    window = FixedWindow("boundary", 60)
    frozen.move_to(datetime(2030, 1, 1, 0, 0, 59, 500000, tzinfo=UTC), tick=False)
    assert window.hit("a") == WindowCount(count=1, retry_after=1)  # half a second left: 1, never 0
    assert window.hit("a").count == 2
    frozen.move_to(datetime(2030, 1, 1, 0, 1, 0, tzinfo=UTC), tick=False)
    # A new window: the count starts again, with the whole window ahead.
    assert window.count("a") == WindowCount(count=0, retry_after=60)
    assert window.hit("a") == WindowCount(count=1, retry_after=60)
    frozen.move_to(datetime(2030, 1, 1, 0, 1, 0, 200000, tzinfo=UTC), tick=False)
    assert window.count("a") == WindowCount(count=1, retry_after=60)  # 59.8 s rounds up
    frozen.shift(59)
    assert window.count("a") == WindowCount(count=1, retry_after=1)
    frozen.shift(1)
    assert window.count("a") == WindowCount(count=0, retry_after=60)


def test_a_counter_whose_key_was_evicted_starts_again_at_one(frozen):
    window = FixedWindow("evicted", 60)
    window.hit("a")
    window.hit("a")
    caches["limits"].clear()
    assert window.hit("a").count == 1


def test_a_window_lasts_at_least_a_second():
    with pytest.raises(ValueError):
        FixedWindow("nothing", 0)


# --- /api/v1 -----------------------------------------------------------------------------


def test_after_30_failures_in_5_minutes_the_address_is_refused_even_with_a_valid_token(client, settings, frozen):
    assert (settings.DISPATCH_API_AUTH_FAILURE_LIMIT, settings.DISPATCH_API_AUTH_FAILURE_WINDOW_SECONDS) == (30, 300)
    token = api_token_for("dispatcher")
    fail(client, 30)
    error = assert_rate_limited(client.get(TOOLS, **bearer(token)))
    assert "290 seconds" in error["message"]
    # Refusals are answered before any credential is read: more of them change nothing.
    assert_rate_limited(client.get(TOOLS, **bearer("rd_not-a-token")))
    assert_rate_limited(client.get(TOOLS))


def test_the_limit_holds_for_one_address_only(client, limit, frozen):
    token = api_token_for("dispatcher")
    fail(client, LIMIT)
    assert_rate_limited(client.get(TOOLS, **bearer(token)))
    # Another address, and a valid token from a fresh address, are not held back.
    assert client.get(TOOLS, **bearer(token, REMOTE_ADDR="10.1.2.3")).status_code == 200
    assert client.get(TOOLS, **bearer(jwt_for("desk", "dispatcher"), REMOTE_ADDR="10.9.9.9")).status_code == 200
    fail(client, 1, REMOTE_ADDR="10.1.2.3")  # that address's own first failure is still a 401


def test_every_authenticating_route_answers_429_in_the_envelope(client, limit, frozen):
    token = api_token_for("dispatcher")
    ticket = ticket_new()
    fail(client, LIMIT)
    assert_rate_limited(client.get(TOOLS, **bearer(token)))
    assert_rate_limited(client.get(COCKPIT, **bearer(token)))
    assert_rate_limited(client.get(f"/api/v1/tickets/{ticket.id}", **bearer(token)))
    assert_rate_limited(client.get(f"/api/v1/tickets/{ticket.id}/timeline", **bearer(token)))
    command = client.post(
        f"/api/v1/tickets/{ticket.id}/triage",
        data={"priority": "URGENT", "incident_type": "DOOR_WONT_LATCH"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=(key := str(uuid.uuid4())),
        **bearer(token),
    )
    # A command's refusal quotes its Idempotency-Key as the request id, as every refusal does.
    assert assert_rate_limited(command)["request_id"] == key
    ticket.refresh_from_db()
    assert ticket.state == "NEW"
    # What needs no credential is still served.
    assert client.get("/api/v1/schema").status_code == 200


def test_after_the_window_the_address_is_allowed_again(client, limit, frozen):
    token = api_token_for("dispatcher")
    fail(client, LIMIT)
    frozen.shift(REMAINING - 1)
    assert_rate_limited(client.get(TOOLS, **bearer(token)), retry_after=1)
    frozen.shift(1)
    assert client.get(TOOLS, **bearer(token)).status_code == 200
    # A new window counts from zero: the limit is reached again only after LIMIT new failures.
    fail(client, LIMIT)
    assert_rate_limited(client.get(TOOLS, **bearer(token)), retry_after=WINDOW)


def test_successful_calls_never_count(client, limit, frozen):
    token = api_token_for("dispatcher")
    for _ in range(LIMIT * 4):
        assert client.get(TOOLS, **bearer(token)).status_code == 200
    fail(client, LIMIT - 1)
    assert client.get(TOOLS, **bearer(token)).status_code == 200
    fail(client, 1)
    assert_rate_limited(client.get(TOOLS, **bearer(token)))


def test_every_kind_of_401_counts_jwts_included(client, settings, frozen):
    revoked = api_token_for("dispatcher", name="old-laptop")
    api_token_revoke(token=ApiToken.objects.get(name="old-laptop"))
    refusals = [
        ({}, "AUTH_REQUIRED"),
        ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, "INVALID_AUTH_TOKEN"),
        (bearer(revoked), "INVALID_AUTH_TOKEN"),
        (bearer("not-a-jwt"), "INVALID_AUTH_TOKEN"),
        (bearer(jwt_for("desk", "dispatcher", secret=OTHER_SECRET)), "INVALID_AUTH_TOKEN"),
        (bearer(jwt_for("desk", "dispatcher", expires_in=-60)), "INVALID_AUTH_CLAIMS"),
        (bearer(jwt_for("desk", None)), "INVALID_AUTH_CLAIMS"),
        (bearer(jwt_for("desk", "overlord")), "INVALID_AUTH_CLAIMS"),
    ]
    settings.DISPATCH_DEV_AUTH = False
    settings.DISPATCH_API_AUTH_FAILURE_LIMIT = len(refusals)
    for headers, code in refusals:
        response = client.get(TOOLS, **headers)
        assert (response.status_code, code_of(response)) == (401, code)
    assert_rate_limited(client.get(TOOLS, **bearer(jwt_for("desk", "dispatcher"))))


def test_refusals_of_a_valid_credential_do_not_count(client, limit, frozen):
    technician = TechnicianFactory()
    tech_token = api_token_for("technician", technician=technician)
    for _ in range(LIMIT + 1):
        # A role the tool refuses (403) is not a failed authentication.
        response = client.get(COCKPIT, **bearer(tech_token))
        assert (response.status_code, code_of(response)) == (403, "TOOL_ROLE_FORBIDDEN")
    assert client.get(TOOLS, **bearer(tech_token)).status_code == 200


def test_x_forwarded_for_is_not_believed_without_trusted_proxies(client, limit, frozen, settings):
    settings.DISPATCH_TRUSTED_PROXY_COUNT = 0
    token = api_token_for("dispatcher")
    for index in range(LIMIT):
        # A client cannot spread its failures over addresses it makes up.
        fail(client, 1, HTTP_X_FORWARDED_FOR=f"198.51.100.{index}")
    assert_rate_limited(client.get(TOOLS, **bearer(token, HTTP_X_FORWARDED_FOR="198.51.100.200")))


def test_behind_trusted_proxies_the_client_the_proxy_saw_is_counted(client, limit, frozen, settings):
    settings.DISPATCH_TRUSTED_PROXY_COUNT = 1
    token = api_token_for("dispatcher")
    fail(client, LIMIT, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert_rate_limited(client.get(TOOLS, **bearer(token, HTTP_X_FORWARDED_FOR="203.0.113.7")))
    # What the client wrote left of the proxy's entry changes nothing, either way.
    assert_rate_limited(client.get(TOOLS, **bearer(token, HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.7")))
    # Another client behind the same proxy (same REMOTE_ADDR) is not held back.
    assert client.get(TOOLS, **bearer(token, HTTP_X_FORWARDED_FOR="198.51.100.20")).status_code == 200
    assert client.get(TOOLS, **bearer(token, HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.20")).status_code == 200


def test_a_limit_of_zero_turns_the_limit_off(client, settings, frozen):
    settings.DISPATCH_API_AUTH_FAILURE_LIMIT = 0
    fail(client, 40)
    assert client.get(TOOLS, **bearer(api_token_for("dispatcher"))).status_code == 200


# --- MCP ---------------------------------------------------------------------------------


def test_a_call_without_a_client_address_is_not_counted(limit, frozen):
    # The stdio server authenticates its one local caller in-process, with no network peer.
    for _ in range(LIMIT + 2):
        with pytest.raises(DispatchError) as refused:
            caller_authenticate({"Authorization": "Bearer rd_not-a-token"})
        assert refused.value.code == "INVALID_AUTH_TOKEN"


def test_an_mcp_caller_cannot_overwrite_the_proxys_address_with_an_underscore_header(limit, frozen, settings):
    # "X_Forwarded_For" would land on the same META key as the proxy's "X-Forwarded-For";
    # it is dropped, as Django's own ASGI handler and gunicorn drop such headers.
    settings.DISPATCH_TRUSTED_PROXY_COUNT = 1
    for index in range(LIMIT):
        with pytest.raises(DispatchError):
            caller_authenticate(
                {
                    "Authorization": "Bearer rd_nope",
                    "X-Forwarded-For": "203.0.113.7",
                    "X_Forwarded_For": f"10.1.0.{index}",
                },
                client="127.0.0.1",
            )
    with pytest.raises(DispatchError) as refused:
        caller_authenticate({"Authorization": "Bearer rd_nope", "X-Forwarded-For": "203.0.113.7"}, client="127.0.0.1")
    assert refused.value.code == "AUTH_RATE_LIMITED"


@pytest.mark.django_db(transaction=True)
def test_the_mcp_endpoint_counts_failures_and_answers_429_with_retry_after(
    mcp_url,  # noqa: F811
    client,
    limit,
    settings,
    time_machine,
):
    # The server runs in threads of its own: the clock moves on for them too (from a window's start).
    time_machine.move_to(START, tick=True)
    token = api_token_for("dispatcher")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    def post(authorization: str) -> httpx2.Response:
        return httpx2.post(mcp_url, json=listing, headers={**headers, "Authorization": authorization}, timeout=30)

    assert post(f"Bearer {token}").status_code == 200
    for _ in range(LIMIT - 1):
        response = post("Bearer rd_not-a-token")
        assert (response.status_code, response.json()["error"]["code"]) == (401, "INVALID_AUTH_TOKEN")
    # /api/v1 and /mcp count into the same number for the address (both 127.0.0.1 here).
    fail(client, 1)
    response = post(f"Bearer {token}")
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["code"], error["policy_error"]) == (
        "AUTH_RATE_LIMITED",
        {"code": "AUTH_RATE_LIMITED", "dimension": "auth"},
    )
    retry_after = int(response.headers["Retry-After"])
    assert retry_after == error["retry_after_seconds"] and 1 <= retry_after <= REMAINING
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert "WWW-Authenticate" not in response.headers
    assert client.get(TOOLS, **bearer(token)).status_code == 429
    # Behind a trusted proxy, the door reads X-Forwarded-For as /api/v1 does: another client is served.
    settings.DISPATCH_TRUSTED_PROXY_COUNT = 1
    forwarded = httpx2.post(
        mcp_url,
        json=listing,
        headers={**headers, "Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.20"},
        timeout=30,
    )
    assert forwarded.status_code == 200, forwarded.text
    assert post(f"Bearer {token}").status_code == 429
