"""Settings shared by every environment. Every value can be set from the environment.

Embedded default (nothing configured): SQLite in ./var, Celery over kombu's filesystem broker in
./var/broker, media in ./var/media. Scaled: DATABASE_URL=postgres://..., CELERY_BROKER_URL=redis://...
"""
from pathlib import Path

import dj_database_url

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("STUDYSERVER_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "insecure-local-only-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "studyserver.audit",
    "annotations",
    "explain",
    "analysis",
    "studyserver.researcher",
]

MIDDLEWARE = [
    # Outermost, so every answer carries the security headers: the early refusals below (413, a NUL
    # in the URL, a bad Host), static files, redirects, CSRF failures and error pages included.
    "studyserver.security_headers.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Under /api/ every error is JSON in the API's shape, Django's debug pages (DEBUG on) included.
    "studyserver.error_pages.ApiErrorShapeMiddleware",
    "studyserver.request_limits.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last, so it sees the view's exception first: a lost database connection -> 503, not 500.
    "studyserver.database_outage.DatabaseUnavailableMiddleware",
]

# Security headers (docs/security.md). Production adds HSTS, secure cookies and the HTTPS redirect.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Participant URLs hold their token: never send it to another site in a Referer.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# The cache counts rate limits (studyserver/throttling.py). Scaled: CACHE_URL=redis://host:6379/1,
# shared by every web process; embedded (unset): this process's memory.
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "studyserver"),
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}
elif CACHE_URL in ("", "locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "studyserver"}}
else:
    raise ValueError(f"CACHE_URL={CACHE_URL!r}: use redis://host:port/db, rediss://..., or leave it unset")

ROOT_URLCONF = "studyserver.urls"
WSGI_APPLICATION = "studyserver.wsgi.application"
ASGI_APPLICATION = "studyserver.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "studyserver" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: a web process and a worker share the file. WAL and a busy timeout
    # let them take turns instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "studyserver" / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Requests: participants post raw strokes; a documented limit keeps a request bounded.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
STIMULUS_MAX_PIXELS = env_int("STIMULUS_MAX_PIXELS", 4096 * 4096)
STIMULUS_MAX_BYTES = env_int("STIMULUS_MAX_BYTES", 25 * 1024 * 1024)
# Zip uploads of stimuli (annotations/uploads.py): the archive as sent, the files it may hold, what
# they may expand to in total, and the compression ratio above which a member is taken for a bomb.
STIMULUS_ZIP_MAX_BYTES = env_int("STIMULUS_ZIP_MAX_BYTES", 512 * 1024 * 1024)
STIMULUS_ZIP_MAX_FILES = env_int("STIMULUS_ZIP_MAX_FILES", 2000)
STIMULUS_ZIP_MAX_TOTAL_BYTES = env_int("STIMULUS_ZIP_MAX_TOTAL_BYTES", 1024 * 1024 * 1024)
STIMULUS_ZIP_MAX_RATIO = env_int("STIMULUS_ZIP_MAX_RATIO", 100)
# Corrupted variants generated in one request, computed while the request waits: at most this many,
# and this many pixels in all (bench/corruptions.py: 0.1-1 s per 451x300 variant, zoom blur the
# slowest, so 8 Mpx stays well inside the web server's 60 s timeout).
STIMULUS_VARIANTS_MAX = env_int("STIMULUS_VARIANTS_MAX", 200)
STIMULUS_VARIANTS_MAX_PIXELS = env_int("STIMULUS_VARIANTS_MAX_PIXELS", 8_000_000)

# A token stops working API_TOKEN_TTL_DAYS after it was made (0 = never); asking again with username
# and password then makes a new one (studyserver/authentication.py).
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 30)

# Researchers authenticate with a token (POST /api/v1/auth/token/, or `manage.py drf_create_token
# <username>`) or the session of the login page. Token first, so an anonymous call gets 401 with
# `WWW-Authenticate: Token` rather than a bare 403.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "studyserver.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "studyserver.api_schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON with NUL characters or absurd nesting is a 400 (studyserver/request_limits.py), not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "studyserver.request_limits.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "studyserver.api_errors.exception_handler",
    # Rate limits (studyserver/throttling.py). Participants are counted per token, not per IP: a lab
    # or a Prolific burst shares addresses (bench/load.py runs 500 from 127.0.0.1 at ~1 req/s each).
    "DEFAULT_THROTTLE_CLASSES": ["studyserver.throttling.ResearcherThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "participant": env_str("THROTTLE_PARTICIPANT", "120/min"),
        "participant_start": env_str("THROTTLE_PARTICIPANT_START", "600/min"),
        "login": env_str("THROTTLE_LOGIN", "10/min"),
        "researcher": env_str("THROTTLE_RESEARCHER", "1200/min"),
    },
    # Proxies in front that append to X-Forwarded-For (0: the socket's address is the client's;
    # behind one reverse proxy set NUM_PROXIES=1). Unset, DRF would trust a client-sent header.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "studyserver API",
    "DESCRIPTION": (
        "Human-vs-model saliency studies: design, launch and monitor studies, upload stimuli, generate "
        "corrupted variants, read progress and scores (researchers, token or session login); take part "
        "(participants, by the token in the path). Errors: {error, detail, fields}. Get a token with "
        "POST /api/v1/auth/token/ and send `Authorization: Token <token>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    # Swagger UI's JavaScript and CSS from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "StimulusRoleEnum": "annotations.models.StimulusRole",
        "ShareRoleEnum": "annotations.models.StudyShare.Role",
    },
}

# Celery (namespace CELERY): JSON only, explicit limits, long jobs on their own queue.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")  # a host, or kombu warns "No hostname"
_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Must exceed the longest job (acks_late: an unacked job is redelivered after this many seconds).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600),
        # How often a worker looks for messages of dead workers that became visible again: every
        # interval x throttle seconds (kombu's defaults, 10 x 10 s).
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "explain.tasks.*": {"queue": "explain"},
    "analysis.tasks.*": {"queue": "default"},
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300)
# A RUNNING explanation job whose worker has been silent this long (it died: SIGKILL, OOM, lost
# machine) is taken over by the next delivery of its message, which the broker makes after the
# visibility timeout. Keep it below that timeout and above the longest job.
EXPLAIN_RUNNING_STALE_S = env_int("EXPLAIN_RUNNING_STALE_S", CELERY_TASK_TIME_LIMIT + 60)
# Insertion/deletion AUC of every stored model map, on the explain queue after the map (about 450
# forward passes, ~3.5 s per map on 2 CPU cores). EXPLAIN_FAITHFULNESS=0 turns it off.
EXPLAIN_FAITHFULNESS = env_bool("EXPLAIN_FAITHFULNESS", True)
# Launching queues new explanation jobs of one (model, weights, method, params) this many per task; a
# task explains its stimuli in one batch where the method is a single pass (gradient, guided
# backprop, Grad-CAM, Guided Grad-CAM, FEM). 1 = one task per job.
EXPLAIN_STIMULI_PER_TASK = env_int("EXPLAIN_STIMULI_PER_TASK", 8)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The safety net (run by the beat embedded in the `default` worker, `-B`): work whose message was
# lost (a broker restart, a publish that failed after commit) is found in the database and queued.
CELERY_BEAT_SCHEDULE = {
    "pending-work-sweep": {"task": "analysis.tasks.pending_work_sweep", "schedule": env_int("SWEEP_SECONDS", 60)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Where a model registry looks for locally stored optional weights (torchvision models etc.).
MODEL_WEIGHTS_DIR = Path(env_str("MODEL_WEIGHTS_DIR", str(VAR_DIR / "weights")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
