"""The product's URLs plus two reference views the benchmark measures the toolset against."""

from django.http import JsonResponse
from django.urls import include, path

from config.urls import urlpatterns as product_urlpatterns
from dispatch.tickets.models import Ticket


def bare(request):
    """The physical reference: the same server, middleware and JSON rendering, no database."""
    return JsonResponse({"ok": True})


def bare_db(request):
    """The reference with one indexed read, the least a ticket tool can do."""
    row = Ticket.objects.filter(pk=request.GET.get("id")).values("id", "state", "version").first()
    return JsonResponse({"ok": True, "ticket": {k: str(v) for k, v in (row or {}).items()}})


def _has_api(patterns) -> bool:
    return any(str(getattr(p, "pattern", "")).startswith("api/") for p in patterns)


urlpatterns = [
    path("bench/bare", bare),
    path("bench/bare-db", bare_db),
    *product_urlpatterns,
]
if not _has_api(product_urlpatterns):
    # The toolset is mounted at api/ by config/urls.py; mount it here if that has not happened yet.
    urlpatterns.append(path("api/", include("dispatch.api.urls")))
