from django.contrib import admin
from django.urls import include, path

from dispatch.api.mcp.views import mcp_not_served_here
from dispatch.common.favicon import favicon_ico
from dispatch.common.views import health

admin.site.site_header = "Real Dispatch"
admin.site.site_title = "Real Dispatch back office"
admin.site.index_title = "Dispatch back office"

urlpatterns = [
    path("health", health, name="health"),
    path("favicon.ico", favicon_ico, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/", include("dispatch.api.urls")),
    # Served by config/asgi.py before Django sees it; this answers only under a WSGI server.
    path("mcp", mcp_not_served_here, name="mcp"),
    path("board/", include("dispatch.scheduling.urls")),
    path("autopilot/", include("dispatch.autopilot.urls")),
    path("tech/", include("dispatch.field.urls")),
    path("account/", include("dispatch.accounts.urls")),
    path("", include("dispatch.customer.urls")),
    path("", include("dispatch.intake.urls")),
]

# A crash anywhere still answers in the toolset's JSON envelope under /api/, and with Django's
# plain 500 page elsewhere.
handler500 = "dispatch.api.errors.server_error"
