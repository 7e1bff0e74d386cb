"""URLs of the toolset, built from the registry. Included by config/urls.py at `api/`.

Each contract route becomes one path; `{ticketId}` is matched as any path segment so that a
malformed id is answered with the contract's 404 TICKET_NOT_FOUND instead of a bare 404. There
is no router, viewset or generic CRUD here, and every other path under /api/ answers 404 JSON.
"""

from django.urls import path, re_path

from .errors import api_route_not_found
from .views import SchemaView, ToolsView, docs_page, route_views

app_name = "api"

VERSION_PREFIX = "v1/"


def _django_route(contract_route: str) -> str:
    return VERSION_PREFIX + contract_route.lstrip("/").replace("{ticketId}", "<str:ticketId>")


urlpatterns = [
    path(VERSION_PREFIX + "tools", ToolsView.as_view(), name="tools"),
    path(VERSION_PREFIX + "schema", SchemaView.as_view(), name="schema"),
    path(VERSION_PREFIX + "docs", docs_page, name="docs"),
    *[path(_django_route(route), view, name=route) for route, view in route_views()],
    re_path(r"^.*$", api_route_not_found, name="not_found"),
]
