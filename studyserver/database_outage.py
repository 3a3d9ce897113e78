"""A database that cannot be reached answers 503 + Retry-After with the API's error shape, not 500.

PostgreSQL restarting, a failover or a cut network raise `django.db.OperationalError` or
`InterfaceError` from whatever query the view was running. Nothing was committed (the transaction
is rolled back with the lost connection), so the client may safely retry; participant submits retry
with the same client UUID, which makes the retry idempotent. Django closes the broken connection
at the end of the request (`close_if_unusable_or_obsolete`), so the next request reconnects.
"""
from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"error": "database_unavailable",
         "detail": "The service is briefly unavailable; nothing was saved by this request. Please retry in a few seconds.",
         "fields": {}},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Turns a view's OperationalError / InterfaceError into 503 (JSON, Retry-After)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            log.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
            return database_unavailable_response()
        return None
