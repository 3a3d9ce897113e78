"""Errors that Django answers itself (no view matched, a view failed before DRF could answer, a
middleware refused): JSON in the API's error shape under /api/, Django's HTML elsewhere.

Two pieces, so the shape holds whatever DEBUG says:
* handler400/403/404/500 (wired in urls.py) answer JSON under /api/ when Django uses them (DEBUG off);
* ApiErrorShapeMiddleware turns any other error answer under /api/ that is not JSON into the shape,
  status and headers kept: Django's debug pages (DEBUG on answers an unknown URL or a crash with an
  HTML page listing the URL patterns or the traceback, without calling the handlers), a plain 405,
  a CSRF failure page, an error rendered as YAML by the schema view. The traceback of a 500 is
  logged by Django (logger `django.request`) either way; it is never sent.
"""
from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults

API_PREFIX = "/api/"

# status -> (error code, detail); a detail of None is filled in per request (see api_error).
API_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid", "bad request"),
    401: ("not_authenticated", "authentication credentials were not provided or are not valid"),
    403: ("forbidden", "you may not do this"),
    404: ("not_found", None),
    405: ("method_not_allowed", None),
    406: ("not_acceptable", "cannot answer in the format the Accept header asks for"),
    413: ("too_large", "the request body is too large"),
    415: ("unsupported_media_type", "the request body's content type is not accepted"),
    429: ("throttled", "too many requests; try again later"),
    500: ("server_error", "the server failed; the error is logged"),
    503: ("unavailable", "the service is briefly unavailable; try again later"),
}


def api_error(request, status: int) -> JsonResponse:
    """An error answer in the API's shape, {"error", "detail", "fields"}, for `status`."""
    code, detail = API_ERRORS.get(status, ("error" if status < 500 else "server_error", None))
    if status == 404:
        detail = f"no API endpoint at {request.path[:200]} (see /api/docs/)"
    elif status == 405:
        detail = f"method {request.method[:20]} is not allowed at {request.path[:200]}"
    elif detail is None:
        detail = f"the request failed with status {status}"
    return JsonResponse({"error": code, "detail": detail, "fields": {}}, status=status)


def bad_request(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return api_error(request, 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return api_error(request, 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return api_error(request, 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(API_PREFIX):
        return api_error(request, 500)
    return defaults.server_error(request)


# Headers of the original answer that the JSON one must not inherit.
_BODY_HEADERS = {"content-type", "content-length", "content-encoding", "content-disposition"}


def _is_json(response) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class ApiErrorShapeMiddleware:
    """Under /api/, an error answer (status >= 400) that is not JSON is replaced by `api_error` of
    the same status; its other headers (Allow, Retry-After, WWW-Authenticate, Vary, ...) and cookies
    are kept. Answers that are JSON already (DRF's, the handlers', the middleware limits') pass."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith(API_PREFIX) or _is_json(response):
            return response
        shaped = api_error(request, response.status_code)
        for name, value in response.items():
            if name.lower() not in _BODY_HEADERS:
                shaped[name] = value
        shaped.cookies = response.cookies
        return shaped
