from django.urls import path

from . import views

app_name = "field"

urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("done/", views.finished, name="finished"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("offline/", views.offline, name="offline"),
    path("jobs/<str:ticket_id>/", views.job, name="job"),
    path("jobs/<str:ticket_id>/state/", views.job_state, name="job_state"),
    path("jobs/<str:ticket_id>/evidence/<str:evidence_id>/thumbnail/", views.evidence_thumbnail, name="thumbnail"),
    path("jobs/<str:ticket_id>/<slug:action_name>/", views.act, name="act"),
]
