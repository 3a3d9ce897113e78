"""Local development and the embedded demo (`make demo`): DEBUG off unless the environment asks for
it (`DEBUG=1`), since the demo is served on a real port and Django's debug pages list the URL
patterns and, on a crash, settings and source. Static files are served by WhiteNoise either way."""
from .base import *  # noqa: F401,F403
from .base import VAR_DIR
from .env import env_bool

DEBUG = env_bool("DEBUG", False)

# The embedded default keeps its SQLite file, broker folders and media under ./var.
VAR_DIR.mkdir(parents=True, exist_ok=True)
# WhiteNoise serves the apps' static files straight from their folders (and, with DEBUG, picks up
# edits without a restart); `manage.py demo` also collects them into STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
