"""Between the password and the pages: a session that owes a second factor goes to it first.

The gate covers the faces that run on a signed-in session (the back office, the board, the
technician's pages). The customer's pages need no account, and the toolset authenticates every
request by its own header, so neither is gated here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from .sessions import session_touch
from .two_factor import ENROL, SESSION_KEY, two_factor_owed

GATED_PREFIXES = ("/admin/", "/board/", "/tech/")
# Signing out, and what a technician's phone loads before any page, pass the gate.
OPEN_PATHS = frozenset({"/admin/logout/", "/tech/logout/", "/tech/sw.js", "/tech/offline/", "/admin/jsi18n/"})


class SignInGateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            session_touch(request)
            owed = self._owed(request, user)
            if owed and request.path.startswith(GATED_PREFIXES) and request.path not in OPEN_PATHS:
                return self._to_second_factor(request, owed)
        return self.get_response(request)

    @staticmethod
    def _owed(request, user) -> str:
        if user.is_verified():
            return ""
        owed = request.session.get(SESSION_KEY)
        if owed is None:
            # A session from before two-factor existed: decide once and remember.
            owed = request.session[SESSION_KEY] = two_factor_owed(user)
        return owed

    @staticmethod
    def _to_second_factor(request, owed: str):
        name = "accounts:two_factor_setup" if owed == ENROL else "accounts:two_factor_verify"
        target = f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"
        if request.headers.get("X-Field-Fetch") == "1":
            # The technician page's queued post keeps its update and asks for the code.
            return JsonResponse(
                {"ok": False, "code": "TWO_FACTOR_REQUIRED", "message": "Enter your sign-in code.", "missing": []},
                status=401,
            )
        if request.headers.get("HX-Request"):
            # A board refresh must move the whole page, not swap the code form into a lane.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return HttpResponseRedirect(target)
