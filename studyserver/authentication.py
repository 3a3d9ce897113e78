"""Researcher API tokens that expire (DRF's `authtoken` tokens never do).

A token older than `API_TOKEN_TTL_DAYS` (setting and environment variable, default 30; 0 = tokens never
expire) is refused with 401 and a message saying how to get a new one. `POST /api/v1/auth/token/` with
username and password returns the current token while it is valid and replaces an expired one.
"""
from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


def token_expires(token) -> datetime.datetime | None:
    """When `token` stops working (None: never)."""
    days = settings.API_TOKEN_TTL_DAYS
    return token.created + datetime.timedelta(days=days) if days else None


def token_expired(token) -> bool:
    expires = token_expires(token)
    return expires is not None and expires <= timezone.now()


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>`, refusing a token past `API_TOKEN_TTL_DAYS`."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                "token expired; POST username and password to /api/v1/auth/token/ for a new one"
            )
        return user, token
