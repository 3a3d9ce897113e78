"""The participant API's answers as the OpenAPI schema (`/api/schema/`) shows them: next (a trial
or the completion), submit (with its nested next), practice, and the errors. The handlers
(annotations/apis.py) answer plain dicts of exactly these shapes, and tests/annotations/test_apis.py
checks real answers against the schema; docs/payloads.md describes the flow.
"""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from studyserver.api_errors import ErrorOutput

from .models import TaskKind


def error(text: str) -> OpenApiResponse:
    """An error answer ({"error", "detail", "fields"}) described by `text` (its codes)."""
    return OpenApiResponse(ErrorOutput, description=text)


class ParticipantProgressOutput(serializers.Serializer):
    done = serializers.IntegerField(help_text="trials answered (the practice not counted)")
    total = serializers.IntegerField(help_text="trials planned: K main trials + the catch trials (at least `done`)")


class DisplayOutput(serializers.Serializer):
    width = serializers.FloatField(help_text="CSS px the image is shown at (before any shrinking to a small screen)")
    height = serializers.FloatField(help_text="CSS px")


class PaintParamsOutput(serializers.Serializer):
    brush_radii = serializers.ListField(child=serializers.FloatField(), help_text="stimulus px")
    time_limit_ms = serializers.IntegerField(allow_null=True)
    min_area = serializers.FloatField(help_text="least painted fraction of the image")
    max_area = serializers.FloatField(help_text="most painted fraction of the image")


class BubbleParamsOutput(serializers.Serializer):
    variant = serializers.ChoiceField(choices=["free", "description"])
    blur_sigma = serializers.FloatField(help_text="stimulus px")
    bubble_radius = serializers.FloatField(help_text="stimulus px")
    viewing_ms = serializers.IntegerField(allow_null=True, help_text="null: no time limit (description variant)")
    min_clicks = serializers.IntegerField()
    min_chars = serializers.IntegerField()


class MouseParamsOutput(serializers.Serializer):
    blur_sigma = serializers.FloatField(help_text="stimulus px")
    window_radius = serializers.FloatField(help_text="stimulus px")
    viewing_ms = serializers.IntegerField()
    sample_interval_ms = serializers.FloatField()
    min_samples = serializers.IntegerField()


@extend_schema_field(PolymorphicProxySerializer(
    component_name="TrialParams", serializers=[PaintParamsOutput, BubbleParamsOutput, MouseParamsOutput],
    resource_type_field_name=None))
class TrialParamsField(serializers.DictField):
    """The task's rules for this trial, by the trial's task_kind (sizes in stimulus px, times in ms)."""


class TrialOutput(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField(help_text="0-based order of the trial among the participant's trials")
    task_kind = serializers.ChoiceField(choices=TaskKind.values)
    image_url = serializers.CharField(help_text="GET: the picture (PNG), token-authenticated like this call")
    width = serializers.IntegerField(help_text="stimulus px")
    height = serializers.IntegerField(help_text="stimulus px")
    label = serializers.CharField(help_text="the object's name shown to the participant")
    display = DisplayOutput()
    params = TrialParamsField()


class NextTrialOutput(serializers.Serializer):
    done = serializers.BooleanField(help_text="false: a trial to answer")
    progress = ParticipantProgressOutput()
    trial = TrialOutput()


class NextDoneOutput(serializers.Serializer):
    done = serializers.BooleanField(help_text="true: no more trials for this participant")
    closed_early = serializers.BooleanField(help_text="the study closed before this participant finished")
    progress = ParticipantProgressOutput()
    completion_code = serializers.CharField(
        allow_null=True, help_text="the code to give the recruiter; null when the study closed before the participant "
        "answered any trial (they are asked to return the study); excluded participants get catch.failed_code if set")
    completion_url = serializers.CharField(help_text="the completion page")
    redirect_url = serializers.CharField(help_text="the recruiter's return address; empty when none, or when there is no code")


NEXT_OUTPUT = PolymorphicProxySerializer(component_name="NextOutput", serializers=[NextTrialOutput, NextDoneOutput],
                                         resource_type_field_name=None)


@extend_schema_field(NEXT_OUTPUT)
class NextField(serializers.DictField):
    """What GET next answers."""


UNKNOWN_TOKEN = error("unknown participant token")
