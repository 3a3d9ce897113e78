"""Bad bytes get a 400 that names them, never a 500: JSON bodies nested too deeply or holding NUL
characters (PostgreSQL cannot store U+0000 in text or jsonb), and NUL in a URL's path or query.

Sizes are limited elsewhere: the request body by DATA_UPLOAD_MAX_MEMORY_SIZE (settings) and, for
participants, payloads.MAX_BODY_BYTES (413 before the body is read); uploads by STIMULUS_MAX_BYTES
and the zip limits (annotations/uploads.py).
"""
from __future__ import annotations

import io
import re

from django.conf import settings
from django.http import JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64
# \u0000 as an escape, not preceded by an escaped backslash ("\\u0000" is the text backslash-u0000).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def json_depth_exceeds(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if containers nest more than `limit` deep (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, refusing (400, ParseError) what would otherwise fail deeper as a 500.

    Any depth that Python's json cannot parse (~1000) is refused; `depth_checked` bodies also past
    MAX_JSON_DEPTH (a walk of the parsed value: ~7 ms for a 4000-point payload, so the participant
    parser, whose payloads are rebuilt field by field from a fixed shape, leaves it out)."""

    depth_checked = True

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if b"\x00" in raw or (b"\\u0000" in raw and _NUL_ESCAPE.search(raw.decode("utf-8", "replace"))):
            raise ParseError("JSON parse error - NUL characters (\\u0000) are not accepted")
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep") from None
        if self.depth_checked and isinstance(data, (dict, list)) and json_depth_exceeds(data):
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep")
        return data


def body_limit(content_type: str) -> int | None:
    """The most bytes a request body of this type may have: uploads (multipart) up to the zip limit
    plus 1 MiB of form fields, anything else DATA_UPLOAD_MAX_MEMORY_SIZE (None: no limit)."""
    if content_type.startswith("multipart/form-data"):
        return settings.STIMULUS_ZIP_MAX_BYTES + 1024 * 1024
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, "fields": {}}, status=status)


class RequestLimitsMiddleware:
    """Before any view: a body declared larger than `body_limit` -> 413 (DRF reads JSON and form
    bodies from the stream, past Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check); a NUL character in
    the path or the query string -> 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            return _refuse(400, "invalid", "NUL characters are not accepted in a URL")
        length = request.META.get("CONTENT_LENGTH") or ""
        limit = body_limit(request.META.get("CONTENT_TYPE", ""))
        if limit is not None and length.isdigit() and int(length) > limit:
            return _refuse(413, "too_large", f"the request body has {length} bytes; at most {limit} are accepted")
        return self.get_response(request)
