from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("two-factor/", views.two_factor_home, name="two_factor_home"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("two-factor/setup/qr.svg", views.two_factor_qr, name="two_factor_qr"),
    path("two-factor/recovery-codes/", views.recovery_codes_new, name="recovery_codes_new"),
]
