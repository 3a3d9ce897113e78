"""The resume cookie: what lets the browser that consented, and only it, come back to its participant.

One cookie per study, set when the consent (page or API) hands out a participant: httpOnly (no page
script reads it), SameSite=Lax (a cross-site POST does not carry it), Secure when the request came
over HTTPS, for 30 days. Its value is the participant's token itself. The token is already the
credential in the participant's URL, and a resume leads to that URL, so a derived value (an HMAC of
the token) would guard nothing more; the token also lets the study link find the participant of a
browser that has no external id.
"""
from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse

RESUME_COOKIE_MAX_AGE_S = 30 * 24 * 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def resume_cookie_name(slug: str) -> str:
    return f"studyserver-resume-{slug}"


def resume_cookie_get(request: HttpRequest, slug: str) -> str:
    """The token the browser's cookie for this study holds, or "" (none, or not token-shaped)."""
    value = request.COOKIES.get(resume_cookie_name(slug), "")
    return value if _TOKEN.fullmatch(value) else ""


def resume_cookie_set(response: HttpResponse, request: HttpRequest, slug: str, token: str) -> None:
    response.set_cookie(resume_cookie_name(slug), token, max_age=RESUME_COOKIE_MAX_AGE_S, path="/",
                        secure=request.is_secure(), httponly=True, samesite="Lax")
