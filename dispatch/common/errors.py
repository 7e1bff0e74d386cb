"""The one error type services raise. Faces (API, admin, pages) render it; nobody else invents codes."""

from __future__ import annotations

from typing import Any

DIMENSIONS = frozenset(
    {"role", "tool", "state", "scope", "evidence", "identity", "assignment", "scheduling", "policy", "request", "auth"}
)


class DispatchError(Exception):
    """A refusal with a stable code, an HTTP status and the policy dimension it belongs to."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        dimension: str = "request",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        assert dimension in DIMENSIONS, dimension
        self.code = code
        self.message = message
        self.status = status
        self.dimension = dimension
        self.details = details or {}

    def __repr__(self) -> str:
        return f"DispatchError({self.code!r}, {self.message!r}, status={self.status})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "policy_error": {"code": self.code, "dimension": self.dimension},
            **self.details,
        }


def invalid_request(message: str, **details: Any) -> DispatchError:
    return DispatchError("INVALID_REQUEST", message, status=400, dimension="request", details=details)


def not_found(code: str, message: str) -> DispatchError:
    return DispatchError(code, message, status=404, dimension="request")


def storage_unavailable(message: str) -> DispatchError:
    """The file store (S3, or the local disk) could not be reached: nothing was stored or read,
    and the same request may simply be sent again in a minute."""
    return DispatchError(
        "STORAGE_UNAVAILABLE", message, status=503, dimension="request", details={"retry_after_seconds": 60}
    )


def retry_after(error: DispatchError) -> str | None:
    """The Retry-After header a refusal carries: a 429 or a 503 that says when to ask again."""
    seconds = error.details.get("retry_after_seconds")
    return str(seconds) if error.status in (429, 503) and isinstance(seconds, int) else None
