"""Tests: the real PostgreSQL and Redis of this machine unless the environment points elsewhere."""
import hashlib
import os
from pathlib import Path

import dj_database_url

from .base import *  # noqa: F401,F403
from .base import BASE_DIR, DATABASES, VAR_DIR
from .env import env_str

# Checkouts on one machine test side by side: each gets its own database and Redis key prefix.
TEST_RUN_ID = env_str("STUDYSERVER_TEST_RUN_ID", hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8])
DATABASES["default"] = dj_database_url.parse(
    env_str("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/studyserver_{TEST_RUN_ID}"), conn_max_age=0
)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "global_keyprefix": f"studyserver-test-{TEST_RUN_ID}:"}
# A worker process started by a test gets the test process's MEDIA_ROOT through the environment.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "test-media" / str(os.getpid()))))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
# Serve static files straight from the apps (no collectstatic needed in tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
