"""Researcher REST API (v1): a study's stimuli -- upload one image or a zip with a labels CSV, list,
inspect, download, remove while a draft -- and corrupted variants generated on the server.

Reading needs view access to the study, changing it edit access (see studyserver/researcher/selectors.py).
"""
from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from PIL import Image
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotations.corruptions import CORRUPTIONS, SEVERITIES, UNKNOWN_NAME, UNKNOWN_SEVERITY
from annotations.models import StimulusRole
from annotations.regions import RegionInvalid, region_parse
from annotations.services import stimuli as stimulus_services
from studyserver.errors import InvalidInput, PayloadTooLarge
from studyserver.request_limits import SafeJSONParser

from .. import selectors as selectors
from .studies import ResearcherApi, errors

_BOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
_REGION = {
    "type": "object",
    "properties": {
        "boxes": {"type": "array", "items": _BOX},
        "polygons": {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}},
    },
}


@extend_schema_field({"oneOf": [_REGION, _BOX], "nullable": True})
class RegionField(serializers.Field):
    """Where the object is, in stimulus pixels: {"boxes": [[x0, y0, x1, y1], ...], "polygons":
    [[[x, y], ...], ...]} (annotations.regions); a bare box [x0, y0, x1, y1] is shorthand, and in a
    form the text "x0 y0 x1 y1" or JSON. Checked against the image by the service."""

    def to_internal_value(self, data):
        try:
            return region_parse(data)
        except RegionInvalid as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value


class StimulusOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField(help_text="main (shown and analysed), catch (attention check), practice")
    condition = serializers.CharField(help_text="'original', or e.g. 'glass_blur-2' for a variant")
    source = serializers.IntegerField(source="source_id", allow_null=True, help_text="the original this is a variant of")
    class_index = serializers.IntegerField(allow_null=True, help_text="ImageNet class; null: the model's top class")
    class_name = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="of the uploaded (or generated) bytes")
    known_region = RegionField(allow_null=True, help_text="catch and practice stimuli: where the object is")
    corruption = serializers.CharField(help_text="the generating corruption, empty for uploads")
    severity = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True, help_text="the seed passed to the corruption")
    image_url = serializers.SerializerMethodField(help_text="the uploaded bytes")
    rendition_url = serializers.SerializerMethodField(help_text="the 8-bit RGB PNG participants and models see")
    created_at = serializers.DateTimeField()

    def _url(self, name: str, stimulus) -> str:
        return reverse(name, args=[stimulus.study.slug, stimulus.pk])

    def get_image_url(self, stimulus) -> str:
        return self._url("api-stimulus-image", stimulus)

    def get_rendition_url(self, stimulus) -> str:
        return self._url("api-stimulus-rendition", stimulus)


def field_problems_flat(errors: dict) -> dict[str, list[str]]:
    """DRF's field errors in the API's documented shape, {field: [problems]}: a problem inside a
    list or a nested object names where it is, "corruptions[0]: unknown corruption 'x'"."""
    return {str(field): [message if where == field else f"{where}: {message}" for where, message in _problems(str(field), detail)]
            for field, detail in errors.items()}


def _problems(where: str, detail):
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _problems(f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}", value)
    elif isinstance(detail, (list, tuple)):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list, tuple)):  # a list of nested objects: name the item
                yield from _problems(f"{where}[{index}]", value)
            else:  # the problems of `where` itself
                yield where, str(value)
    else:
        yield where, str(detail)


class FlatInput(serializers.Serializer):
    """An Input whose refusal is an InvalidInput with flat field problems (`field_problems_flat`),
    every problem listed in the detail, instead of DRF's nested {"field": {0: [...]}}."""

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        if super().is_valid():
            return True
        problems = field_problems_flat(self._errors)
        self._errors = problems
        if raise_exception:
            raise InvalidInput("; ".join(_named(field, p) for field, found in problems.items() for p in found), fields=problems)
        return False


def _named(field: str, problem: str) -> str:
    return problem if problem.startswith((f"{field}[", f"{field}.")) else f"{field}: {problem}"


def _limit(upload, limit: int, field: str) -> None:
    if upload.size > limit:
        message = f"{upload.name} is {upload.size} bytes; the limit is {limit} bytes"
        raise PayloadTooLarge(message, fields={field: [message]})


class StimuliApi(ResearcherApi):
    """List a study's stimuli; upload one image (multipart) while the study is a draft."""

    parser_classes = [MultiPartParser, FormParser, SafeJSONParser]

    class Input(FlatInput):
        image = serializers.FileField(help_text="PNG, JPEG, GIF, BMP, TIFF or WebP within the pixel and byte limits")
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        class_index = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=999)
        class_name = serializers.CharField(required=False, allow_blank=True, help_text="an ImageNet class name or synonym")
        condition = serializers.CharField(max_length=64, required=False, default="original")
        source = serializers.IntegerField(required=False, allow_null=True, help_text="id of the original this is a variant of")
        role = serializers.ChoiceField(StimulusRole.choices, default=StimulusRole.MAIN)
        known_region = RegionField(required=False, allow_null=True, help_text="required for role 'catch', optional for 'practice'")

    @extend_schema(responses={200: StimulusOutput(many=True), **errors(404)})
    def get(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug)
        return Response(StimulusOutput(selectors.stimulus_list(study=study).select_related("study"), many=True).data)

    @extend_schema(request={"multipart/form-data": Input}, responses={201: StimulusOutput, **errors(400, 403, 404, 409, 413)})
    def post(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="edit")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        upload = fields.pop("image")
        _limit(upload, settings.STIMULUS_MAX_BYTES, "image")
        source_id = fields.pop("source", None)
        source = selectors.stimulus_get(study=study, stimulus_id=source_id) if source_id is not None else None
        stimulus = stimulus_services.stimulus_create(
            study=study, data=upload.read(), filename=upload.name, source=source, **fields
        )
        return Response(StimulusOutput(stimulus).data, status=status.HTTP_201_CREATED)


class StimuliZipApi(ResearcherApi):
    """Upload a zip of images with a labels CSV (inside the zip, or as `labels`): all or nothing.

    CSV columns: file (required, the path in the zip), class (ImageNet index or name), condition,
    source (the file of the original this is a variant of, or the name of a stimulus already in the
    study), name, role (main, catch, practice), known_region ("x0 y0 x1 y1"). Every image must be
    listed and every listed file present. Refused with 400 and every problem listed: non-images,
    unsafe names (absolute, drive letters, '..'), symbolic links, zip bombs, images over the pixel
    limit, unknown classes, missing files, duplicates.
    """

    parser_classes = [MultiPartParser]

    class Input(FlatInput):
        archive = serializers.FileField(help_text="a .zip of images (and labels.csv unless sent as `labels`)")
        labels = serializers.FileField(required=False, help_text="the labels CSV, if not inside the zip")

    @extend_schema(request={"multipart/form-data": Input}, responses={201: StimulusOutput(many=True), **errors(400, 403, 404, 409, 413)})
    def post(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="edit")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        archive, labels = data.validated_data["archive"], data.validated_data.get("labels")
        _limit(archive, settings.STIMULUS_ZIP_MAX_BYTES, "archive")
        if labels is not None:
            _limit(labels, settings.STIMULUS_MAX_BYTES, "labels")
        created = stimulus_services.stimuli_import_zip(study=study, archive=archive, labels=labels.read() if labels else None)
        return Response(StimulusOutput(created, many=True).data, status=status.HTTP_201_CREATED)


class StimulusApi(ResearcherApi):
    """Inspect one stimulus; remove it (and its variants) while the study is a draft."""

    class RemovedOutput(serializers.Serializer):
        removed = serializers.ListField(child=serializers.IntegerField(), help_text="ids: the stimulus and its variants")

    @extend_schema(responses={200: StimulusOutput, **errors(404)})
    def get(self, request, slug: str, stimulus_id: int):
        study = selectors.study_get(user=request.user, slug=slug)
        return Response(StimulusOutput(selectors.stimulus_get(study=study, stimulus_id=stimulus_id)).data)

    @extend_schema(responses={200: RemovedOutput, **errors(403, 404, 409)})
    def delete(self, request, slug: str, stimulus_id: int):
        study = selectors.study_get(user=request.user, slug=slug, need="edit")
        stimulus = selectors.stimulus_get(study=study, stimulus_id=stimulus_id)
        removed = stimulus_services.stimulus_remove(study=study, stimulus=stimulus)
        return Response(self.RemovedOutput({"removed": removed}).data)


IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff", "WEBP": "image/webp"}


class StimulusImageApi(ResearcherApi):
    """The stimulus's bytes as uploaded (or generated)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY), **errors(404)})
    def get(self, request, slug: str, stimulus_id: int):
        study = selectors.study_get(user=request.user, slug=slug)
        stimulus = selectors.stimulus_get(study=study, stimulus_id=stimulus_id)
        with stimulus.image.open("rb") as handle, Image.open(handle) as probe:
            content_type = IMAGE_TYPES.get(probe.format, "application/octet-stream")
        return FileResponse(stimulus.image.open("rb"), content_type=content_type)


class StimulusRenditionApi(ResearcherApi):
    """The 8-bit RGB PNG that participants and models see."""

    @extend_schema(responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY), **errors(404)})
    def get(self, request, slug: str, stimulus_id: int):
        study = selectors.study_get(user=request.user, slug=slug)
        stimulus = selectors.stimulus_get(study=study, stimulus_id=stimulus_id)
        return FileResponse(stimulus.rendition.open("rb"), content_type="image/png")


class StimulusVariantsApi(ResearcherApi):
    """Generate corrupted variants (ImageNet-C style) of original main stimuli, deterministically from
    `seed`: one per source x corruption x severity, condition "<corruption>-<severity>". All or nothing."""

    class Input(FlatInput):
        corruptions = serializers.ListField(
            child=serializers.ChoiceField(list(CORRUPTIONS), error_messages={"invalid_choice": UNKNOWN_NAME}), min_length=1
        )
        severities = serializers.ListField(
            child=serializers.ChoiceField(SEVERITIES, error_messages={"invalid_choice": UNKNOWN_SEVERITY}), min_length=1
        )
        seed = serializers.IntegerField(default=0, min_value=0, max_value=2**63 - 1)
        sources = serializers.ListField(
            child=serializers.IntegerField(), required=False, allow_null=True,
            help_text="ids of original main stimuli; default: all of them",
        )

    @extend_schema(request=Input, responses={201: StimulusOutput(many=True), **errors(400, 403, 404, 409)})
    def post(self, request, slug: str):
        study = selectors.study_get(user=request.user, slug=slug, need="edit")
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        created = stimulus_services.stimulus_variants_create(
            study=study, corruptions=values["corruptions"], severities=values["severities"], seed=values["seed"],
            source_ids=values.get("sources"),
        )
        return Response(StimulusOutput(created, many=True).data, status=status.HTTP_201_CREATED)


class CorruptionsApi(ResearcherApi):
    """The corruptions available for variants, with the paper's parameters per severity."""

    class Output(serializers.Serializer):
        name = serializers.CharField()
        family = serializers.CharField()
        description = serializers.CharField()
        parameters = serializers.ListField(child=serializers.CharField())
        scaled = serializers.ListField(child=serializers.CharField(), help_text="adapted to the image size (224 px reference)")
        severities = serializers.ListField(child=serializers.DictField(), help_text="severity 1..5: {parameter: value}")

    @extend_schema(responses={200: Output(many=True), **errors()})
    def get(self, request):
        body = [
            {"name": c.name, "family": c.family, "description": c.description, "parameters": list(c.params),
             "scaled": list(c.scaled), "severities": [dict(zip(c.params, row)) for row in c.table]}
            for c in CORRUPTIONS.values()
        ]
        return Response(self.Output(body, many=True).data)
