from django.apps import AppConfig


class SimulationConfig(AppConfig):
    """`manage.py simulate_day`: a working day played against the whole product (intake, the
    autopilot, scheduling, the field, closeout) on a throwaway database. It sits above every face
    it drives (import-linter's top row), and nothing imports it."""

    name = "dispatch.simulation"
    label = "simulation"
    verbose_name = "Simulated day"
    default_auto_field = "django.db.models.BigAutoField"
