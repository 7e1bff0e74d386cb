"""The Permissions-Policy header: browser features are off everywhere but where a page needs them.

Only the technician's pages use the camera (evidence photos) and the location (check-in); they
say so with `permissions_allow`. Every other page — back office, board, customer pages — gets
every listed feature switched off, so a script that somehow ran there could not ask for them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

FEATURES = ("camera", "geolocation", "microphone", "payment", "usb", "serial", "display-capture")
ALLOWED_ATTR = "permissions_allowed"


def permissions_policy(allowed: frozenset[str] = frozenset()) -> str:
    """`camera=(self), geolocation=(), ...`: each feature for this origin only, or for nobody."""
    return ", ".join(f"{feature}=(self)" if feature in allowed else f"{feature}=()" for feature in FEATURES)


def permissions_allow(*features: str) -> Callable:
    """A view decorator: these features are allowed to this origin on the view's pages."""
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown browser features: {sorted(unknown)}")

    def decorate(view):
        @wraps(view)
        def allowing(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            setattr(response, ALLOWED_ATTR, frozenset(features))
            return response

        return allowing

    return decorate


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.default = permissions_policy()

    def __call__(self, request):
        response = self.get_response(request)
        allowed = getattr(response, ALLOWED_ATTR, None)
        response.headers.setdefault("Permissions-Policy", permissions_policy(allowed) if allowed else self.default)
        return response
