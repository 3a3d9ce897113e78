"""Admin: create studies, upload stimuli (through the service, so they are validated), launch."""
from django import forms
from django.conf import settings
from django.contrib import admin, messages

from annotations.imagenet import imagenet_class_resolve
from annotations.images import ImageRejected, image_inspect, image_rendition
from annotations.models import Participant, Response, Stimulus, Study, Trial
from annotations.regions import RegionInvalid, region_clean
from annotations.services import participation
from explain.study_config import DEFAULT_EXPLAIN_CONFIG
from studyserver.errors import DomainError

from .services import studies


class StimulusUploadForm(forms.ModelForm):
    upload = forms.FileField(help_text="PNG, JPEG, GIF, BMP, TIFF or WebP")
    label = forms.CharField(required=False, help_text="ImageNet class index or name")

    class Meta:
        model = Stimulus
        fields = ["study", "name", "condition", "source", "role", "known_region"]
        help_texts = {"known_region": 'Catch stimuli: where the object is, in image pixels, e.g. {"boxes": [[x0, y0, x1, y1]]} '
                                      'or {"polygons": [[[x, y], [x, y], [x, y]]]}'}

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        if label:
            try:
                imagenet_class_resolve(label)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return label

    def clean_upload(self):
        """The same checks the service makes, shown as a form error instead of a crash."""
        upload = self.cleaned_data["upload"]
        data = upload.read()
        upload.seek(0)
        try:
            image_inspect(data, max_pixels=settings.STIMULUS_MAX_PIXELS, max_bytes=settings.STIMULUS_MAX_BYTES)
        except ImageRejected as exc:
            raise forms.ValidationError(f"{upload.name}: {exc}") from None
        return upload

    def clean(self):
        """A catch stimulus needs its known region, inside the image (as the service checks)."""
        cleaned = super().clean()
        region, upload = cleaned.get("known_region"), cleaned.get("upload")
        if cleaned.get("role") == "catch" and region is None:
            self.add_error("known_region", "a catch stimulus needs its known region")
        elif region is not None and upload is not None:
            data = upload.read()
            upload.seek(0)
            width, height = image_rendition(data).size
            try:
                region_clean(region, width=width, height=height)
            except RegionInvalid as exc:
                self.add_error("known_region", f"{exc.field}: {exc}")
        return cleaned


@admin.register(Stimulus)
class StimulusAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "study", "class_index", "class_name", "condition", "width", "height"]
    list_filter = ["study", "condition"]
    readonly_fields = ["sha256", "width", "height", "image", "rendition", "class_index", "class_name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the dashboard or the API removes a draft's stimulus (files, shared jobs)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = StimulusUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["study", "upload", "label", "name", "condition", "source", "role", "known_region"]
        return super().get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        upload = form.cleaned_data["upload"]
        try:
            created = studies.stimulus_create(
                study=form.cleaned_data["study"],
                data=upload.read(),
                filename=upload.name,
                name=form.cleaned_data.get("name") or "",
                class_index=form.cleaned_data.get("label") or None,
                condition=form.cleaned_data.get("condition") or "original",
                source=form.cleaned_data.get("source"),
                role=form.cleaned_data.get("role") or "main",
                known_region=form.cleaned_data.get("known_region"),
            )
        except DomainError as exc:  # e.g. the same image already in the study
            messages.error(request, exc.message)
            return
        obj.pk = created.pk


@admin.action(description="Launch the selected studies")
def launch(modeladmin, request, queryset):
    for study in queryset:
        try:
            studies.study_launch(study=study)
            messages.success(request, f"{study.slug} launched")
        except DomainError as exc:
            messages.error(request, f"{study.slug}: {exc.message}")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "status", "task_kinds", "participants_per_stimulus", "stimuli_per_participant"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["owner", "status", "launched_at", "archived_at"]
    actions = [launch]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the dashboard or the API deletes a draft (files, shared jobs, the audit log)

    def save_model(self, request, obj, form, change):
        if not change and not obj.owner_id:
            obj.owner = request.user
        if not obj.explain_config:
            obj.explain_config = DEFAULT_EXPLAIN_CONFIG
        super().save_model(request, obj, form, change)


@admin.action(description="Exclude the selected participants (raw data kept, maps rebuilt)")
def exclude(modeladmin, request, queryset):
    for participant in queryset:
        participation.participant_exclude(participant=participant, reason=f"excluded by {request.user}", actor=request.user)
    messages.success(request, f"{queryset.count()} participant(s) excluded")


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "external_id", "task_kind", "status", "exclusion_reason", "consented_at", "completed_at"]
    list_filter = ["study", "status"]
    readonly_fields = ["token", "status", "excluded_at", "exclusion_reason", "calibration", "practice_done_at"]
    actions = [exclude]


admin.site.register(Trial)
admin.site.register(Response)
