"""Between the password and the pages: a session that owes a second factor goes to it first.

Every path is gated but the few that need no account or are part of the sign-in itself: a page
added later is covered without anyone remembering to list it. The customer's pages need no
account, and the toolset authenticates every request by its own header, so those stay open.
Paths are matched on `path_info`, the path inside the application, so a script prefix (a proxy's
mount point, or a SCRIPT_NAME a client managed to send) cannot walk around the gate.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpResponseRedirect, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from .sessions import session_touch
from .two_factor import ENROL, SESSION_KEY, two_factor_owed
from .views import url_with_next

# The sign-in pages themselves, static files, and the faces that need no session: the customer's
# request form, status and verification pages, the providers' webhooks, the toolset, health.
OPEN_PREFIXES = ("/account/", "/static/", "/request/", "/s/", "/verify/", "/hooks/", "/api/", "/mcp", "/health")
# Signing out, and what a technician's phone loads before any page, pass the gate too.
OPEN_PATHS = frozenset({"/admin/logout/", "/tech/logout/", "/tech/sw.js", "/tech/offline/", "/admin/jsi18n/"})
# Set by pages on the requests they make by themselves (the board's refresh every few seconds):
# those must not keep an unattended session alive.
AUTOMATIC_HEADER = "X-Dispatch-Poll"


class SignInGateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            if request.headers.get(AUTOMATIC_HEADER) != "1":
                session_touch(request)
            owed = self._owed(request, user)
            path = request.path_info
            if owed and not path.startswith(OPEN_PREFIXES) and path not in OPEN_PATHS:
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
        if request.headers.get("X-Field-Fetch") == "1" or "application/json" in request.headers.get("Accept", ""):
            # A script's request (the technician page's queued post, a move on the board) gets an
            # answer it can show; the post waits on the phone until the code is entered.
            return JsonResponse(
                {"ok": False, "code": "TWO_FACTOR_REQUIRED", "message": "Enter your sign-in code.", "missing": []},
                status=401,
            )
        if request.headers.get("HX-Request"):
            # A board refresh must move the whole page, not swap the code form into a lane, and
            # come back to the page it was on rather than to the fragment it asked for.
            return HttpResponseClientRedirect(url_with_next(name, _page_of_htmx(request)))
        return HttpResponseRedirect(url_with_next(name, request.get_full_path()))


def _page_of_htmx(request) -> str:
    """The page an htmx request came from (HX-Current-URL), when it is one of ours."""
    current = request.headers.get("HX-Current-URL", "")
    if current and url_has_allowed_host_and_scheme(current, allowed_hosts={request.get_host()}):
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.get_full_path()
