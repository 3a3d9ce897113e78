"""Django's error pages (no view matched, or a view failed before DRF could answer): JSON in the API's
error shape under /api/, Django's HTML elsewhere. Wired as handler400/403/404/500 in urls.py."""
from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def _json(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, "fields": {}}, status=status)


def bad_request(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return _json(400, "invalid", "bad request")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return _json(403, "forbidden", "you may not do this")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return _json(404, "not_found", f"no API endpoint at {request.path[:200]} (see /api/docs/)")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(API_PREFIX):
        return _json(500, "server_error", "the server failed; the error is logged")
    return defaults.server_error(request)
