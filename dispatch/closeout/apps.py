from django.apps import AppConfig


class CloseoutConfig(AppConfig):
    name = "dispatch.closeout"
    label = "closeout"
    verbose_name = "Closeout"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dispatch.tickets import catalog

        from . import evidence_gaps, selectors

        catalog.reader_register("incident_duration_minutes", selectors.incident_duration_minutes)
        catalog.reader_register("incident_crew", selectors.incident_crew)
        catalog.reader_register("incident_crew_types", selectors.incident_crew_types)
        catalog.reader_register("incident_keywords", selectors.incident_keywords)
        catalog.reader_register("incident_intake_needs", selectors.incident_intake_needs)
        catalog.reader_register("incident_type_names", selectors.incident_type_names)
        catalog.ticket_flags_register(evidence_gaps.MISSING_EVIDENCE)
