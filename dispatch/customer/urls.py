"""The customer's status page and its documents, and the public packet verification page.
config/urls.py mounts these at the site root."""

from django.urls import path

from . import views

app_name = "customer"

urlpatterns = [
    path("s/<str:token>/", views.status_page, name="status"),
    path("s/<str:token>/invoice.pdf", views.status_invoice_pdf, name="status_invoice"),
    path("s/<str:token>/packet.pdf", views.status_packet_pdf, name="status_packet"),
    path("verify/<str:sha256>/", views.packet_verify, name="packet_verify"),
]
