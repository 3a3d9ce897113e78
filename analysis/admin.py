from django.contrib import admin, messages

from studyserver.errors import DomainError

from . import services
from .models import HumanCeiling, HumanMap, MapRecipe, ReliabilityRun, Score


@admin.register(HumanMap)
class HumanMapAdmin(admin.ModelAdmin):
    list_display = ["id", "stimulus", "task_kind", "n_participants", "sigma_px_min", "sigma_px_max", "revision", "updated_at"]
    list_filter = ["task_kind"]
    readonly_fields = ["stimulus", "task_kind", "recipe", "n_participants", "sum_file", "fixations_file", "sigma_px_min",
                       "sigma_px_max", "revision"]


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ["id", "stimulus", "job", "task_kind", "metric", "value", "n_participants", "note"]
    list_filter = ["metric", "task_kind"]


@admin.register(HumanCeiling)
class HumanCeilingAdmin(admin.ModelAdmin):
    list_display = ["stimulus", "task_kind", "metric", "ceiling", "floor", "n_participants", "repetitions", "computed_at"]
    list_filter = ["task_kind", "metric"]


@admin.register(ReliabilityRun)
class ReliabilityRunAdmin(admin.ModelAdmin):
    list_display = ["study", "task_kind", "status", "requested", "computed", "seconds", "computed_at"]


@admin.register(MapRecipe)
class MapRecipeAdmin(admin.ModelAdmin):
    """Saved through the service, so the recipe is validated and the kind's maps are rebuilt."""

    list_display = ["study", "task_kind", "recipe", "updated_at"]

    def save_model(self, request, obj, form, change):
        try:
            services.human_map_recipe_set(study=obj.study, task_kind=obj.task_kind, recipe=obj.recipe)
        except DomainError as exc:
            messages.error(request, exc.message)
