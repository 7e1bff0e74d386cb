"""Customer-facing intake: the providers' webhooks, the public request form.
The status page is the customer face's (dispatch.customer), which adds the job's documents.

config/urls.py mounts these at the site root: `path("", include("dispatch.intake.urls"))`.
"""

from django.urls import path

from . import views, webhooks

app_name = "intake"

urlpatterns = [
    path("hooks/twilio/sms", webhooks.twilio_sms, name="twilio_sms"),
    path("hooks/email/inbound", webhooks.mailgun_inbound, name="email_inbound"),
    path("request/", views.request_form, name="request_form"),
    path("request/thanks/<str:token>/", views.request_thanks, name="request_thanks"),
]
