"""Writes for researcher accounts, for an administrator without the Django admin (`manage.py
researcher`): create, deactivate, activate, set a password, make an API token (keyword-only, atomic).

A researcher is a Django user who is not staff: they log in to the dashboard and the REST API, own
studies and are shared others' (annotations.models.StudyShare). A deactivated researcher can no
longer log in or use a token (their token is deleted); their studies, shares and data stay.
Every change is recorded in the audit log; passwords and tokens never are.
"""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from studyserver.audit.models import AuditAction
from studyserver.audit.services import audit_record
from studyserver.authentication import token_expired
from studyserver.errors import Conflict, InvalidInput, NotFound

GENERATED_PASSWORD_BYTES = 15  # 20 URL-safe characters


def password_generate() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def _audit(user, action: str, actor, actor_name: str) -> None:
    audit_record(action=action, actor=actor, actor_name=actor_name, target=f"researcher {user.get_username()}")


def _user(username: str):
    user = get_user_model().objects.select_for_update().filter(username=username).first()
    if user is None:
        raise NotFound(f"no researcher named {username!r}")
    return user


def _password_check(password: str, user) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput("; ".join(exc.messages), fields={"password": exc.messages}) from None


@transaction.atomic
def researcher_create(*, username: str, email: str = "", password: str | None = None, actor=None,
                      actor_name: str = "") -> tuple[object, str]:
    """A new active researcher (not staff). Without a password one is generated. Returns (user,
    password). InvalidInput for a bad name, email or a password the validators refuse; Conflict if
    the name is taken."""
    model = get_user_model()
    if model.objects.filter(username=username).exists():
        raise Conflict(f"a user named {username!r} exists already", fields={"username": ["taken"]})
    user = model(username=username, email=email, is_active=True, is_staff=False)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        raise InvalidInput("; ".join(exc.messages), fields=exc.message_dict) from None
    password = password if password is not None else password_generate()
    _password_check(password, user)
    user.set_password(password)
    user.save()
    _audit(user, AuditAction.RESEARCHER_CREATED, actor, actor_name)
    return user, password


@transaction.atomic
def researcher_active_set(*, username: str, active: bool, actor=None, actor_name: str = "") -> bool:
    """Activate or deactivate a researcher; deactivating deletes their API token. Returns whether
    anything changed (nothing is recorded when it did not)."""
    user = _user(username)
    if user.is_active == active:
        return False
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        Token.objects.filter(user=user).delete()
    _audit(user, AuditAction.RESEARCHER_ACTIVATED if active else AuditAction.RESEARCHER_DEACTIVATED, actor, actor_name)
    return True


@transaction.atomic
def researcher_password_set(*, username: str, password: str | None = None, actor=None, actor_name: str = "") -> str:
    """Set a researcher's password (generated when None; the validators apply). Returns it."""
    user = _user(username)
    password = password if password is not None else password_generate()
    _password_check(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    _audit(user, AuditAction.RESEARCHER_PASSWORD_SET, actor, actor_name)
    return password


@transaction.atomic
def researcher_token(*, username: str, rotate: bool = False, actor=None, actor_name: str = "") -> tuple[str, bool]:
    """The researcher's API token: the current one, or a new one if there is none, it has expired or
    `rotate` is set. Returns (key, made now). Refused for an inactive researcher."""
    user = _user(username)
    if not user.is_active:
        raise Conflict(f"researcher {username} is deactivated; activate them first")
    token = Token.objects.filter(user=user).first()
    if token is not None and not rotate and not token_expired(token):
        return token.key, False
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user)
    _audit(user, AuditAction.RESEARCHER_TOKEN_CREATED, actor, actor_name)
    return token.key, True
