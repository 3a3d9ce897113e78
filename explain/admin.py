from django.contrib import admin

from .models import ExplanationJob, ModelMap


@admin.register(ExplanationJob)
class ExplanationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "method_key", "model_key", "image_sha256", "target", "status", "attempts", "finished_at"]
    list_filter = ["status", "method_key", "model_key"]


admin.site.register(ModelMap)
