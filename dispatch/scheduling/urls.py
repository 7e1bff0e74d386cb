"""The dispatch board, mounted by config/urls.py at /board/."""

from django.urls import path

from . import views

app_name = "board"

urlpatterns = [
    path("", views.board, name="day"),
    path("live/", views.board_live, name="live"),
    path("tickets/<uuid:ticket_id>/", views.ticket_panel, name="ticket"),
    path("book/", views.book, name="book"),
    path("move/", views.move, name="move"),
    path("optimize/", views.optimize, name="optimize"),
    path("optimize/apply/", views.optimize_apply, name="optimize_apply"),
]
