"""One error shape for every API error: {"error": <code>, "detail": <message>, "fields": {...}}.

Domain errors raised by services (`studyserver.errors.DomainError`) become 4xx answers here, so
views stay parse -> service -> serialize.
"""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DomainError


class ErrorOutput(serializers.Serializer):
    """The shape of every API error, for the OpenAPI schema."""

    error = serializers.CharField(help_text="machine-readable code: invalid, not_found, forbidden, conflict, frozen, ...")
    detail = serializers.CharField(help_text="what is wrong, for a human")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), help_text="field -> problems")


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"error": exc.code, "detail": exc.message, "fields": exc.fields}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        return Response(
            {"error": "invalid", "detail": "; ".join(exc.messages), "fields": fields},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DataError):  # a safety net: a value PostgreSQL refused (NUL, out of range)
        return Response({"error": "invalid", "detail": "a value was refused by the database (a NUL character, "
                         "or a number or text out of range)", "fields": {}}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        data = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"error": "invalid", "detail": _first_message(data), "fields": data}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = {"error": getattr(exc, "default_code", "error"), "detail": str(detail), "fields": {}}
    return response


def _first_message(data) -> str:
    for key, value in data.items():
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            return f"{key}: {_first_message(value)}"
        return f"{key}: {value}"
    return "invalid input"
