"""Manage researcher accounts without the Django admin.

    manage.py researcher create NAME [--email ADDRESS] [--password-stdin]
    manage.py researcher list
    manage.py researcher deactivate NAME
    manage.py researcher activate NAME
    manage.py researcher set-password NAME [--password-stdin]
    manage.py researcher token NAME [--rotate]

Without --password-stdin a random password is made and printed once. With it, the first line of
standard input is the password (`printf '%s\\n' "$PW" | manage.py researcher create alice
--password-stdin`). Every change is recorded in the audit log as done by "manage.py".
"""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rest_framework.authtoken.models import Token

from studyserver.audit.services import COMMAND_LINE
from studyserver.authentication import token_expired
from studyserver.errors import DomainError

from ... import selectors as researcher_selectors
from ...services import accounts as researchers


class Command(BaseCommand):
    help = "Create, list, deactivate, activate researchers; set their password; print their API token."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        create = commands.add_parser("create", help="a new researcher (prints a random password unless --password-stdin)")
        create.add_argument("name")
        create.add_argument("--email", default="")
        create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        commands.add_parser("list", help="every account: active or not, studies owned and shared, token")
        for name, what in (("deactivate", "no more logins or API calls (data kept)"), ("activate", "undo deactivate")):
            commands.add_parser(name, help=what).add_argument("name")
        password = commands.add_parser("set-password", help="a new password (printed when random)")
        password.add_argument("name")
        password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        token = commands.add_parser("token", help="print the researcher's API token (made if none or expired)")
        token.add_argument("name")
        token.add_argument("--rotate", action="store_true", help="replace the current token with a new one")

    def handle(self, *args, subcommand: str, **options):
        try:
            getattr(self, f"do_{subcommand.replace('-', '_')}")(**options)
        except DomainError as exc:
            raise CommandError(exc.message) from None

    def _password(self, options) -> str | None:
        if not options["password_stdin"]:
            return None
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CommandError("--password-stdin: standard input held no password")
        return line

    def do_create(self, *, name: str, email: str, **options):
        given = self._password(options)
        user, password = researchers.researcher_create(username=name, email=email, password=given, actor_name=COMMAND_LINE)
        self.stdout.write(f"created researcher {user.get_username()}")
        if given is None:
            self.stdout.write(f"password: {password}")

    def do_list(self, **options):
        tokens = {t.user_id: t for t in Token.objects.all()}
        rows = [("name", "active", "staff", "email", "owns", "shared", "token", "last login")]
        for user in researcher_selectors.researchers_list():
            token = tokens.get(user.pk)
            state = "none" if token is None else ("expired" if token_expired(token) else "valid")
            login = timezone.localtime(user.last_login).strftime("%Y-%m-%d %H:%M") if user.last_login else "never"
            rows.append((user.get_username(), "yes" if user.is_active else "no", "yes" if user.is_staff else "no",
                         user.email or "-", str(user.n_owned), str(user.n_shared), state, login))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

    def do_deactivate(self, *, name: str, **options):
        changed = researchers.researcher_active_set(username=name, active=False, actor_name=COMMAND_LINE)
        self.stdout.write(f"deactivated {name}" if changed else f"{name} was deactivated already")

    def do_activate(self, *, name: str, **options):
        changed = researchers.researcher_active_set(username=name, active=True, actor_name=COMMAND_LINE)
        self.stdout.write(f"activated {name}" if changed else f"{name} was active already")

    def do_set_password(self, *, name: str, **options):
        given = self._password(options)
        password = researchers.researcher_password_set(username=name, password=given, actor_name=COMMAND_LINE)
        self.stdout.write(f"password of {name} set")
        if given is None:
            self.stdout.write(f"password: {password}")

    def do_token(self, *, name: str, rotate: bool, **options):
        key, made = researchers.researcher_token(username=name, rotate=rotate, actor_name=COMMAND_LINE)
        if made:
            self.stderr.write(f"made a new API token for {name}")
        self.stdout.write(key)
