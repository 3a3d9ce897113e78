"""Content-Security-Policy (and Permissions-Policy) on every response.

Every response means every one: the middleware is the outermost in settings.MIDDLEWARE (with
Django's X-Frame-Options middleware next to it), so it also sees what inner middleware answers
without a view (413 and the 400 of a NUL in the URL, static files, a bad Host, CSRF failures) and
the error pages of any DEBUG value. Headers a view set itself are kept (setdefault).

Scripts come only from this site (the participant pages, the dashboard and Swagger UI load static
files) or carry the request's nonce (`request.csp_nonce`, for a template's inline <script>); inline
event handlers (onclick=...) do not run. Styles may be inline (style="width: 0%" in templates; no
script runs from CSS). Images may be data: or blob: URLs (canvas exports). Nothing may frame a page
(also X-Frame-Options: DENY), forms post only to this site, and <base> cannot be moved.
The policy can be replaced whole with the CONTENT_SECURITY_POLICY setting ("{nonce}" is filled in).
"""
from __future__ import annotations

import secrets

from django.conf import settings

DEFAULT_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'nonce-{nonce}'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or DEFAULT_POLICY
        response.headers.setdefault("Content-Security-Policy", policy.replace("{nonce}", nonce))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
