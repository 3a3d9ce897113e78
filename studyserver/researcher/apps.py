from django.apps import AppConfig


class ResearcherConfig(AppConfig):
    """The researcher surfaces: REST API, dashboard, orchestration of the apps below (top layer)."""

    name = "studyserver.researcher"
    label = "researcher"
    verbose_name = "Researcher surfaces"
