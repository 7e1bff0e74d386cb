from django.contrib import admin
from django.urls import include, path

from dispatch.common.views import health

admin.site.site_header = "Real Dispatch"
admin.site.site_title = "Real Dispatch back office"
admin.site.index_title = "Dispatch back office"

urlpatterns = [
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/", include("dispatch.api.urls")),
    path("board/", include("dispatch.scheduling.urls")),
    path("", include("dispatch.intake.urls")),
]

# A crash anywhere still answers in the toolset's JSON envelope under /api/, and with Django's
# plain 500 page elsewhere.
handler500 = "dispatch.api.errors.server_error"
