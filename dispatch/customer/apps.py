from django.apps import AppConfig


class CustomerConfig(AppConfig):
    name = "dispatch.customer"
    label = "customer"
    verbose_name = "Customer pages"
