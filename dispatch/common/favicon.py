"""/favicon.ico: browsers and crawlers ask for it at the site's root whatever the page links, so
it answers with the icon every page links from static/ instead of a 404 in the log."""

from __future__ import annotations

from functools import cache

from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = "img/favicon.ico"


@cache
def _icon() -> bytes | None:
    # Read once per process from the project's static/ folder (the same file the pages link).
    found = finders.find(FAVICON)
    if not found:
        return None
    with open(found, "rb") as icon:
        return icon.read()


@require_safe
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon_ico(request):
    icon = _icon()
    if icon is None:
        raise Http404("No icon.")
    return HttpResponse(icon, content_type="image/x-icon")
