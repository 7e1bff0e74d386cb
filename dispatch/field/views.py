"""The technician pages: sign in, my jobs, one job, and a POST per button.

Every POST goes through the button's service (actions.py) once per Idempotency-Key, the
toolset's own mechanism, so a post the phone retried after losing the network has one effect.
A page script sends posts with fetch and asks for JSON (`X-Field-Fetch: 1`); without scripts
the same forms post normally and come back to the job page with a message.
"""

from __future__ import annotations

import uuid
from functools import wraps

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dispatch.api.idempotency import command_run_once, request_hash
from dispatch.closeout.evidence_files import evidence_thumbnail_response, file_refusal_response
from dispatch.closeout.selectors import evidence_visible
from dispatch.common.errors import DispatchError, retry_after
from dispatch.common.roles import Role, role_of_user
from dispatch.common.security_headers import permissions_allow
from dispatch.readmodels.tech_day import technician_finished_jobs, technician_upcoming_jobs
from dispatch.technicians.models import Technician

from . import pages
from .access import NotAllowed, Viewer, job_for, viewer_for
from .actions import ACTIONS, Form, action_run, job_refusal

SESSION_DAYS = 30
LOGIN_URL = "field:login"


def field_page(view):
    """Signed in (else the sign-in page), and someone the pages are for (else a refusal page)."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        fetched = request.headers.get("X-Field-Fetch") == "1"
        if not request.user.is_authenticated:
            if fetched:
                # A queued post of a phone whose session ended: the page keeps it and asks the
                # technician to sign in again, rather than take the sign-in page for an answer.
                return _refusal_json("SIGNED_OUT", "Sign in again; your updates wait on this phone.", 401)
            return redirect_to_login(request.get_full_path(), reverse(LOGIN_URL))
        try:
            viewer = viewer_for(request, view_as=request.GET.get("as") or request.POST.get("as"))
        except NotAllowed:
            if fetched:
                return _refusal_json("NOT_A_TECHNICIAN", "This account is not linked to a technician.", 403)
            return render(request, "field/refused.html", status=403)
        return view(request, viewer, *args, **kwargs)

    return guarded


def _refusal_json(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"ok": False, "code": code, "message": message, "missing": []}, status=status)


class SignInView(auth_views.LoginView):
    template_name = "field/login.html"

    def get(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect("field:jobs")
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        answer = super().form_valid(form)
        # A technician signs in once on their phone and stays signed in for a month; anyone
        # else (a dispatcher viewing as a technician) keeps the site's usual session.
        if role_of_user(form.get_user()) == Role.TECHNICIAN:
            self.request.session.set_expiry(SESSION_DAYS * 24 * 3600)
        return answer

    def get_default_redirect_url(self):
        return reverse("field:jobs")


@require_POST
def sign_out(request):
    logout(request)
    return redirect(LOGIN_URL)


@never_cache
@field_page
def jobs(request, viewer: Viewer):
    if viewer.technician is None:
        # A dispatcher picks whose day to look at.
        technicians = Technician.objects.filter(is_active=True).order_by("display_name")
        return render(request, "field/pick_technician.html", {"viewer": viewer, "technicians": technicians})
    cards = technician_upcoming_jobs(technician_id=viewer.technician_id)
    return render(request, "field/jobs.html", {"viewer": viewer, "days": pages.by_day(cards)})


@never_cache
@field_page
def finished(request, viewer: Viewer):
    if viewer.technician is None:
        return redirect("field:jobs")
    cards = technician_finished_jobs(technician_id=viewer.technician_id)
    return render(request, "field/finished.html", {"viewer": viewer, "days": pages.by_day(cards)})


@never_cache
@permissions_allow("camera", "geolocation")  # evidence photos, and where the check-in happened
@field_page
def job(request, viewer: Viewer, ticket_id):
    ticket = job_for(viewer, ticket_id)
    context = pages.job_context(
        viewer, ticket, part_query=request.GET.get("q", ""), missing=request.session.pop("field_missing", None)
    )
    return render(request, "field/job.html", context)


@never_cache
@require_GET
@field_page
def job_state(request, viewer: Viewer, ticket_id):
    """What the open job page polls to notice a change made elsewhere (an approval decided)."""
    ticket = job_for(viewer, ticket_id)
    return JsonResponse({"state": ticket.state, "version": ticket.version})


@require_POST
@field_page
def act(request, viewer: Viewer, ticket_id, action_name: str):
    action = ACTIONS.get(action_name)
    if action is None:
        raise Http404
    ticket = job_for(viewer, ticket_id)
    if viewer.read_only:
        return _answer(request, ticket, viewer, error=_read_only())
    form = Form.of(action, request.POST, request.FILES)
    try:
        key = _idempotency_key(request)
        answer = command_run_once(
            actor_id=viewer.actor.actor_id,
            endpoint=f"tech-page:{action.name}:{ticket.id}",
            key=key,
            payload_hash=request_hash(_fingerprint(form)),
            run=lambda: _run(action, viewer, ticket, form),
            # A photo is stored before its transaction: a retry must not store it again.
            look_first=action.uploads,
        )
    except DispatchError as refusal:
        return _answer(request, ticket, viewer, error=refusal)
    return _answer(request, ticket, viewer, message=answer.body["message"])


@require_GET
@field_page
def evidence_thumbnail(request, viewer: Viewer, ticket_id, evidence_id):
    ticket = job_for(viewer, ticket_id)
    try:
        item = evidence_visible(viewer.actor, evidence_id, ticket_id=ticket.id)
    except DispatchError:
        raise Http404 from None
    try:
        return evidence_thumbnail_response(item)
    except DispatchError as refusal:  # the file store cannot be reached: a 503 the <img> can retry
        return file_refusal_response(refusal)


@require_GET
def service_worker(request):
    """Served from /tech/ so that it may cache every technician page (a worker's scope is its folder)."""
    body = render_to_string("field/sw.js", {"version": pages.shell_version()})
    response = HttpResponse(body, content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def offline(request):
    """The page the service worker shows for a page it never cached, when there is no network."""
    return render(request, "field/offline.html")


# --- plumbing ---------------------------------------------------------------------------------


def _run(action, viewer: Viewer, ticket, form: Form) -> tuple[int, dict]:
    # Checked when the post runs, not before: a replay of a post that worked before the job was
    # finished still gets its stored answer (command_run_once), a new post is refused.
    refusal = job_refusal(ticket)
    if refusal is not None:
        raise refusal
    action_run(action, actor=viewer.actor, ticket_id=ticket.id, form=form)
    return 200, {"message": action.done}


def _idempotency_key(request) -> uuid.UUID:
    raw = request.headers.get("Idempotency-Key") or request.POST.get("idempotency_key") or ""
    if not raw:
        # A post without a key (a form sent with scripts off) still runs, once per press.
        return uuid.uuid4()
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise DispatchError(
            "INVALID_IDEMPOTENCY_KEY", "The Idempotency-Key must be a UUID.", status=400, dimension="request"
        ) from None


def _fingerprint(form: Form) -> dict:
    """What makes two posts the same request: the fields, and each file by size and name."""
    return {
        "fields": form.lists,
        "files": {
            name: [[getattr(f, "name", ""), getattr(f, "size", 0)] for f in uploads]
            for name, uploads in form.files.items()
        },
    }


def _read_only() -> DispatchError:
    return DispatchError(
        "READ_ONLY_VIEW",
        "You are viewing a technician's pages: nothing can be changed from here.",
        status=403,
        dimension="role",
    )


def _answer(request, ticket, viewer: Viewer, *, message: str = "", error: DispatchError | None = None):
    fetched = request.headers.get("X-Field-Fetch") == "1"
    if error is not None:
        missing = pages.refusal_missing(error)
        if fetched:
            response = JsonResponse(
                {"ok": False, "code": error.code, "message": error.message, "missing": missing}, status=error.status
            )
            if retry_after(error) is not None:
                response["Retry-After"] = retry_after(error)  # the page's queue waits that long
            return response
        messages.error(request, error.message)
        if missing:
            request.session["field_missing"] = missing
        return redirect(pages.job_url(ticket, viewer))
    if fetched:
        return JsonResponse({"ok": True, "message": message})
    messages.success(request, message)
    return redirect(pages.job_url(ticket, viewer))
