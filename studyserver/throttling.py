"""Rate limits, counted in Django's cache (Redis when CACHE_URL points at one, else this process's
memory): DRF throttles for the API and one decorator for plain Django views (the login pages, the
consent form).

Who is counted by what (rates in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], set from env):
* a participant by their token (`participant`): a lab or a Prolific burst shares one IP, so an IP is
  not a participant; the token is hashed before it becomes a cache key;
* taking part (consent, `participant_start`) by client IP: generous, it only bounds sign-up floods;
* a login attempt (`login`) by client IP + the username tried, read as Django reads it to log in
  (`login_name`: NFKC, case-folded), on every login route: the API token endpoint, the researcher's
  and the admin's login pages;
* a researcher (`researcher`) by their user id.

A cache that cannot be reached (Redis restarting) is an outage of the counts, handled per throttle:
participants and researchers are let through (logged: a limit is not worth losing a participant's
paid-for response, and researchers are already authenticated); logins are refused with 503 and
Retry-After (`LoginsUnavailable`), so an outage never allows unlimited password guessing.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
import unicodedata

from django.core.cache import cache as default_cache
from django.http import JsonResponse
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait when logins are refused for lack of the cache (a Redis restart).
LOGIN_UNAVAILABLE_RETRY_S = 30


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def login_name(value) -> str:
    """The name a login attempt is counted under: every spelling that could log in as one account
    gives one name.

    Django's login form strips the username and normalises it to NFKC before it looks the user up
    (`ｒesearcher` and `𝐫esearcher` log in as `researcher`); this does the same, then case-folds
    (and normalises again, as Unicode's caseless identifier match does), so neither the script, the
    width nor the case of a letter buys a fresh allowance. The whole value is read: cutting it
    first would let leading blanks, which the form strips, move the cut."""
    name = unicodedata.normalize("NFKC", str(value).strip())
    return unicodedata.normalize("NFKC", name.casefold()).strip()


class CacheUnavailable(Exception):
    """The cache that holds the counts could not be read or written."""


class _GuardedCache:
    """The throttle's cache, raising CacheUnavailable for any failure of the store, so that only an
    outage (and not, say, a request body that does not parse) decides fail-open or fail-closed."""

    def __init__(self, cache):
        self._cache = cache

    def get(self, key, default=None):
        try:
            return self._cache.get(key, default)
        except Exception as error:  # redis.ConnectionError, TimeoutError and kin
            raise CacheUnavailable(str(error)) from error

    def set(self, key, value, timeout=None):
        try:
            return self._cache.set(key, value, timeout)
        except Exception as error:
            raise CacheUnavailable(str(error)) from error


class LoginsUnavailable(exceptions.APIException):
    """503: the login counts cannot be kept (the cache is down), so no password is checked."""

    status_code = 503
    default_code = "login_unavailable"
    default_detail = (f"logging in is briefly unavailable (the rate-limit store cannot be reached); "
                      f"try again in {LOGIN_UNAVAILABLE_RETRY_S} s")
    wait = LOGIN_UNAVAILABLE_RETRY_S  # DRF answers it as Retry-After


class CacheSafeThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle that decides what a cache outage means: `fail_open` lets the request
    through (and logs it); otherwise it is refused with LoginsUnavailable (503, Retry-After)."""

    fail_open = True

    @property
    def cache(self):
        return _GuardedCache(default_cache)

    def get_rate(self):
        # Read at call time (DRF binds the rates at import), so settings from env or a test apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except CacheUnavailable:
            if self.fail_open:
                logger.warning("rate limit %s skipped: the cache is unavailable", self.scope, exc_info=True)
                return True
            logger.error("request refused (503): rate limit %s cannot be counted, the cache is unavailable",
                         self.scope, exc_info=True)
            raise LoginsUnavailable() from None


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
    return login_name(value)


class LoginThrottle(CacheSafeThrottle):
    """Login attempts per client IP + login_name (so one user's lockout is not everyone's).
    Fails closed: without its counts, a login is refused (503), never let through uncounted."""

    scope = "login"
    fail_open = False

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


def _seconds(wait: float | None) -> int:
    return max(1, math.ceil(wait or 1))


def throttled_answer(wait: float | None) -> JsonResponse:
    """429 in the API's error shape, with Retry-After in whole seconds."""
    seconds = _seconds(wait)
    body = {"error": "throttled", "detail": f"too many requests; try again in {seconds} s", "fields": {}}
    response = JsonResponse(body, status=429)
    response["Retry-After"] = str(seconds)
    return response


def unavailable_answer(error: LoginsUnavailable) -> JsonResponse:
    """503 in the API's error shape, with Retry-After."""
    body = {"error": error.default_code, "detail": str(error.detail), "fields": {}}
    response = JsonResponse(body, status=error.status_code)
    response["Retry-After"] = str(error.wait)
    return response


def login_refused_page(request, status: int, seconds: int):
    """The login page's answer to a refused attempt (429 too many, 503 counts unavailable): a page
    that says so and when to try again, with Retry-After. No password was checked."""
    response = render(request, "registration/login_refused.html",
                      {"unavailable": status == 503, "seconds": seconds, "login_url": request.get_full_path()}, status=status)
    response["Retry-After"] = str(seconds)
    return response


def _json_refusal(request, status: int, seconds: int):
    if status == 503:
        return unavailable_answer(LoginsUnavailable())
    return throttled_answer(seconds)


def throttled(throttle_class, view, methods=("POST",), refuse=_json_refusal):
    """Limit the `methods` requests of a plain Django view with a DRF throttle; a refusal is
    `refuse(request, status, seconds)`: by default 429 (over the limit) or 503 (a throttle that fails
    closed found no cache) in the API's JSON error shape. The wrapper names its throttle
    (`wrapped.throttle_class`), so a test can find every route that is limited."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method in methods:
            throttle = throttle_class()
            try:
                allowed = throttle.allow_request(request, None)
            except LoginsUnavailable as error:
                return refuse(request, error.status_code, error.wait)
            if not allowed:
                return refuse(request, 429, _seconds(throttle.wait()))
        return view(request, *args, **kwargs)

    wrapped.throttle_class = throttle_class
    return wrapped


def login_throttled(view):
    """Limit POSTs of a Django (session) login view with LoginThrottle; GETs are not counted. A
    refusal is a page (these are HTML forms): too many attempts (429), or logins briefly unavailable
    (503), each saying when to try again."""
    return throttled(LoginThrottle, view, refuse=login_refused_page)
