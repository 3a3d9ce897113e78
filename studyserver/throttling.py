"""Rate limits, counted in Django's cache (Redis when CACHE_URL points at one, else this process's
memory): DRF throttles for the API and one decorator for the session login pages.

Who is counted by what (rates in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from env):
* a participant by their token (`participant`): a lab or a Prolific burst shares one IP, so an IP is
  not a participant; the token is hashed before it becomes a cache key;
* taking part (consent, `participant_start`) by client IP: generous, it only bounds sign-up floods;
* a login attempt (`login`) by client IP + the username tried, on the API token endpoint and on the
  login pages (researcher's and admin's);
* a researcher (`researcher`) by their user id.

A cache that cannot be reached (Redis restarting) lets requests through and logs it: a limit is not
worth losing a participant's paid-for response.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math

from django.http import JsonResponse
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class CacheSafeThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle that fails open when the cache errs (and says so in the log)."""

    def get_rate(self):
        # Read at call time (DRF binds the rates at import), so settings from env or a test apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # redis.ConnectionError and kin: the cache is down, the request is not
            logger.warning("rate limit %s skipped: the cache is unavailable", self.scope, exc_info=True)
            return True


class ParticipantTokenThrottle(CacheSafeThrottle):
    """Per participant token (the `token` in the URL)."""

    scope = "participant"

    def get_cache_key(self, request, view):
        token = view.kwargs.get("token") if view is not None else None
        if not token:
            return None
        return self.cache_format % {"scope": self.scope, "ident": _digest(token)}


class ParticipantStartThrottle(CacheSafeThrottle):
    """Consent (participant creation) per client IP."""

    scope = "participant_start"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _username(request) -> str:
    data = getattr(request, "data", None)
    if data is None:
        data = request.POST
    value = data.get("username", "") if hasattr(data, "get") else ""
    return str(value).strip().lower()[:150]


class LoginThrottle(CacheSafeThrottle):
    """Login attempts per client IP + username (so one user's lockout is not everyone's)."""

    scope = "login"

    def get_cache_key(self, request, view):
        ident = f"{self.get_ident(request)}|{_username(request)}"
        return self.cache_format % {"scope": self.scope, "ident": _digest(ident)}


class ResearcherThrottle(CacheSafeThrottle):
    """Authenticated researchers per user; anonymous callers are refused (401) before this runs."""

    scope = "researcher"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


def throttled_answer(wait: float | None) -> JsonResponse:
    """429 in the API's error shape, with Retry-After in whole seconds."""
    seconds = max(1, math.ceil(wait or 1))
    body = {"error": "throttled", "detail": f"too many requests; try again in {seconds} s", "fields": {}}
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(seconds)
    return response


def throttled(throttle_class, view, methods=("POST",)):
    """Limit the `methods` requests of a plain Django view with a DRF throttle (429 JSON beyond)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method in methods:
            throttle = throttle_class()
            if not throttle.allow_request(request, None):
                return throttled_answer(throttle.wait())
        return view(request, *args, **kwargs)

    return wrapped


def login_throttled(view):
    """Limit POSTs of a Django (session) login view with LoginThrottle; GETs are not counted."""
    return throttled(LoginThrottle, view)
