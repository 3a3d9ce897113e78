"""Forms of the dashboard's design pages: a study's settings, a stimulus upload (one image or a zip
with its labels CSV) and corrupted variants. They parse; the services (the REST API's) validate."""
from __future__ import annotations

import json

from django import forms
from django.utils.html import format_html

from annotations.corruptions import CORRUPTIONS, SEVERITIES
from annotations.models import StimulusRole, Study, TaskKind
from annotations.regions import RegionInvalid, region_parse
from annotations.task_params import TaskParamsInvalid, task_params_resolve
from explain.study_config import DEFAULT_EXPLAIN_CONFIG, explain_options

from ..services.studies import EDITABLE

TEXTAREA = forms.Textarea(attrs={"rows": 4})
JSON_AREA = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"})

def explain_choices() -> dict:
    """What the design form's model x method picker offers: every registered model, with why it cannot
    be chosen where its weights are missing (the same check that refuses it in explain_config), and
    every method with its default parameters. The picker edits the JSON field; the JSON stays the truth."""
    return explain_options()


class StudyForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, required=False, label="Link name (slug)",
                           help_text="the participant link is /s/your-slug/; made from the title if empty")
    task_kinds = forms.MultipleChoiceField(choices=TaskKind.choices, widget=forms.CheckboxSelectMultiple,
                                           help_text="each participant does one kind; each stimulus gets its participants per kind")
    participants_per_stimulus = forms.IntegerField(min_value=1, max_value=100000, help_text="per task kind")
    stimuli_per_participant = forms.IntegerField(min_value=1, max_value=100000)
    consent_text = forms.CharField(widget=TEXTAREA)
    instructions_text = forms.CharField(widget=TEXTAREA, required=False, help_text="shown above the task's own instructions")
    completion_code = forms.CharField(max_length=64, required=False, help_text="made at launch if empty")
    redirect_url = forms.URLField(required=False, assume_scheme="https", label="Redirect URL", help_text="where finished participants are sent (e.g. Prolific)")
    task_params = forms.JSONField(required=False, widget=JSON_AREA, label="Task parameters (JSON)")
    TASK_PARAMS_HELP = '{task kind: {parameter: value}}, e.g. {"bubble": {"bubble_radius": 40}}; only what differs from the defaults; docs/tasks.md'
    explain_config = forms.JSONField(widget=JSON_AREA, label="Models and methods (JSON)",
                                     help_text='[{"model", "method", "params"}]: tick them in the table, or write them here with '
                                               'parameters (empty params: the defaults); see /api/v1/explain/options/')

    def __init__(self, *args, study: Study | None = None, editable: tuple[str, ...] = EDITABLE, **kwargs):
        model = study or Study()
        initial = {name: getattr(model, name) for name in EDITABLE}
        if study is None:
            initial.update(slug="", title="", explain_config=DEFAULT_EXPLAIN_CONFIG)
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["task_params"].help_text = self._task_params_help(study)
        for name, field in self.fields.items():
            field.disabled = name not in editable

    def _task_params_help(self, study: Study | None) -> str:
        """The field's help, with every parameter a participant's trial gets: the defaults for a new
        study, the study's own settings with the defaults filled in for an existing one."""
        try:
            resolved = task_params_resolve(study.task_params if study else {})
        except TaskParamsInvalid:  # not stored that way (the service validates), but never a 500 for it
            return self.TASK_PARAMS_HELP
        lines = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in resolved.items())
        summary = "What participants get: these settings with the defaults filled in" if study else "The defaults: what {} means"
        return format_html('{}<details class="resolved" id="task-params-resolved"><summary>{}</summary><pre>{{\n{}\n}}</pre></details>',
                           self.TASK_PARAMS_HELP, summary, lines)

    def settings(self) -> dict:
        """The settings that may change (disabled fields keep their value and are left out)."""
        values = {name: value for name, value in self.cleaned_data.items() if not self.fields[name].disabled}
        if "task_params" in values and values["task_params"] is None:
            values["task_params"] = {}
        return values


class ImageUploadForm(forms.Form):
    image = forms.FileField(help_text="PNG, JPEG, GIF, BMP, TIFF or WebP")
    class_label = forms.CharField(required=False, label="ImageNet class (index or name)", help_text="empty: the model's top class")
    name = forms.CharField(required=False, max_length=200)
    condition = forms.CharField(required=False, max_length=64, initial="original")
    role = forms.ChoiceField(choices=StimulusRole.choices, initial=StimulusRole.MAIN)
    known_region = forms.CharField(required=False, label="Known region (x0 y0 x1 y1, stimulus px)", help_text="required for a catch stimulus")

    def stimulus_fields(self) -> dict:
        data = self.cleaned_data
        label = data["class_label"].strip()
        fields = {"name": data["name"], "condition": data["condition"] or "original", "role": data["role"]}
        if label.isdigit():
            fields["class_index"] = int(label)
        elif label:
            fields["class_name"] = label
        if data["known_region"] is not None:
            fields["known_region"] = data["known_region"]
        return fields

    def clean_known_region(self):
        """"x0 y0 x1 y1" (commas allowed) or the JSON of {"boxes": [...], "polygons": [...]}
        (`annotations.regions.region_parse`); checked against the image by the service."""
        try:
            return region_parse(self.cleaned_data["known_region"])
        except RegionInvalid as exc:
            raise forms.ValidationError(str(exc)) from None


class ZipUploadForm(forms.Form):
    archive = forms.FileField(label="Zip of images", help_text="with labels.csv inside, or the CSV below")
    labels = forms.FileField(required=False, label="Labels CSV (if not in the zip)")


class VariantsForm(forms.Form):
    corruptions = forms.MultipleChoiceField(choices=[(name, name.replace("_", " ")) for name in CORRUPTIONS],
                                            widget=forms.CheckboxSelectMultiple)
    severities = forms.TypedMultipleChoiceField(choices=[(s, str(s)) for s in SEVERITIES], coerce=int,
                                                widget=forms.CheckboxSelectMultiple)
    seed = forms.IntegerField(min_value=0, initial=0, help_text="the same seed gives the same pixels")
