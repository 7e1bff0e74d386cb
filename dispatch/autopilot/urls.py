"""The dispatch desk's answers to the autopilot, mounted by config/urls.py at /autopilot/."""

from django.urls import path

from . import views

app_name = "autopilot"

urlpatterns = [
    path("suggestions/<uuid:suggestion_id>/apply/", views.apply, name="suggestion_apply"),
    path("suggestions/<uuid:suggestion_id>/dismiss/", views.dismiss, name="suggestion_dismiss"),
    path("tickets/<uuid:ticket_id>/undo/", views.undo, name="undo"),
    path("tickets/<uuid:ticket_id>/undo/apply/", views.undo_apply, name="undo_apply"),
]
