"""OpenAPI generation (drf-spectacular) for the house style's nested serializers.

API classes declare small nested `Input` / `Output` serializers; drf-spectacular names components
by class name alone, so every `Input` would collide. Nested serializers are named after their API
class instead: `StudyCloneApi.Input` -> `StudyCloneInput`.
"""
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        parts = serializer.__class__.__qualname__.split(".")
        if len(parts) >= 2 and parts[-1] == name:
            return parts[-2].removesuffix("Api") + name
        return name
