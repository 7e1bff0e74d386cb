"""The error envelope of the toolset: every refusal under /api/ is the same JSON shape.

`{"error": {"code", "message", "request_id", "policy_error": {"code", "dimension"}, ...details}}`

DispatchError (raised by services and by the API's own checks) keeps its status; DRF and
Django exceptions are mapped to stable codes; anything unexpected becomes a 500
INTERNAL_ERROR that carries the request id and never a traceback (the traceback goes to the log).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from dispatch.common.errors import DispatchError, retry_after

logger = logging.getLogger("dispatch.api")

# Kept in the request's META, which a DRF Request shares with the HttpRequest it wraps.
REQUEST_ID_KEY = "dispatch.request_id"


def request_id_of(request) -> str:
    """The id of this request (set when the view starts; generated here if it never did)."""
    value = request.META.get(REQUEST_ID_KEY)
    if not value:
        value = request.META[REQUEST_ID_KEY] = str(uuid.uuid4())
    return value


def error_body(error: DispatchError, request_id: str | None) -> dict[str, Any]:
    """The envelope for one DispatchError; details never overwrite the fixed keys."""
    inner = {key: value for key, value in error.details.items() if key not in {"code", "message", "request_id"}}
    inner.update(
        code=error.code,
        message=error.message,
        request_id=request_id,
        policy_error={"code": error.code, "dimension": error.dimension},
    )
    return {"error": inner}


# --- the API's own refusals, with the codes the contract's clients rely on -----------------


def auth_required() -> DispatchError:
    return DispatchError("AUTH_REQUIRED", "A signed Bearer token is required.", status=401, dimension="auth")


def invalid_auth_token(message: str) -> DispatchError:
    return DispatchError("INVALID_AUTH_TOKEN", message, status=401, dimension="auth")


def invalid_auth_claims(message: str) -> DispatchError:
    return DispatchError("INVALID_AUTH_CLAIMS", message, status=401, dimension="auth")


def auth_rate_limited(retry_after: int) -> DispatchError:
    return DispatchError(
        "AUTH_RATE_LIMITED",
        f"Too many failed authentications from this address; try again in {retry_after} seconds.",
        status=429,
        dimension="auth",
        details={"retry_after_seconds": retry_after},
    )


def route_not_found(path: str = "") -> DispatchError:
    return DispatchError(
        "NOT_FOUND", "Route not found.", status=404, dimension="request", details={"path": path} if path else None
    )


def method_not_allowed(method: str, allowed: list[str]) -> DispatchError:
    return DispatchError(
        "METHOD_NOT_ALLOWED",
        f"Method {method} is not allowed here.",
        status=405,
        dimension="request",
        details={"allowed_methods": allowed},
    )


def payload_too_large(limit: int) -> DispatchError:
    return DispatchError(
        "PAYLOAD_TOO_LARGE",
        f"The request body is larger than {limit} bytes.",
        status=413,
        dimension="request",
        details={"max_bytes": limit},
    )


def invalid_json(message: str = "Request body must be valid JSON.") -> DispatchError:
    return DispatchError("INVALID_JSON", message, status=400, dimension="request")


def internal_error() -> DispatchError:
    return DispatchError("INTERNAL_ERROR", "Internal server error.", status=500, dimension="request")


def error_headers(error: DispatchError) -> dict[str, str]:
    """The HTTP headers a refusal carries besides its envelope (Allow of a 405, Retry-After of a
    429 or a 503: a client library waits that long before it tries again)."""
    headers = {}
    if error.status == 405 and error.details.get("allowed_methods"):
        headers["Allow"] = ", ".join(error.details["allowed_methods"])
    if retry_after(error) is not None:
        headers["Retry-After"] = retry_after(error)
    return headers


def error_for(exc: BaseException, request) -> DispatchError:
    """Map any exception raised while serving an API request to a DispatchError."""
    if isinstance(exc, DispatchError):
        return exc
    if isinstance(exc, drf_exceptions.ParseError):
        if (getattr(request, "content_type", "") or "").lower().startswith("multipart/"):
            return DispatchError("INVALID_REQUEST", "The multipart body could not be read.", status=400)
        return invalid_json()
    if isinstance(exc, RequestDataTooBig):
        return DispatchError("PAYLOAD_TOO_LARGE", "The request body is too large.", status=413, dimension="request")
    if isinstance(exc, (Http404, drf_exceptions.NotFound)):
        return route_not_found(getattr(request, "path", ""))
    if isinstance(exc, drf_exceptions.APIException):
        # Any other DRF refusal keeps its status, with its own code in the contract's style.
        code = str(getattr(exc, "default_code", "error")).upper()
        return DispatchError(code, str(exc.detail), status=exc.status_code, dimension="request")
    return internal_error()


def api_exception_handler(exc: BaseException, context: dict) -> Response:
    """DRF's exception handler for the toolset views: always answers with the envelope."""
    request = context.get("request")
    error = error_for(exc, request)
    request_id = request_id_of(request) if request is not None else None
    if error.status >= 500:
        # The client gets the request id; the log gets the traceback (a DispatchError has none worth keeping).
        logger.error(
            "%s serving %s %s (request %s)",
            error.code,
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            request_id,
            exc_info=None if isinstance(exc, DispatchError) else (type(exc), exc, exc.__traceback__),
        )
    headers = {"X-Request-Id": request_id} if request_id else {}
    headers.update(error_headers(error))
    return Response(error_body(error, request_id), status=error.status, headers=headers)


# --- Django-level fallbacks (URLs no view matched; errors outside a DRF view) ---------------


def envelope_response(error: DispatchError, request) -> JsonResponse:
    request_id = request_id_of(request)
    response = JsonResponse(error_body(error, request_id), status=error.status)
    response["X-Request-Id"] = request_id
    for name, value in error_headers(error).items():
        response[name] = value
    return response


@csrf_exempt  # the toolset authenticates by header, never by cookie: any method gets the JSON 404
def api_route_not_found(request, *args, **kwargs) -> JsonResponse:
    """Any path under /api/ that names no tool."""
    return envelope_response(route_not_found(request.path), request)


def server_error(request, *args, **kwargs):
    """A `handler500` for config/urls.py: the JSON envelope under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return envelope_response(internal_error(), request)
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)
