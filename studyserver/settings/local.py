"""Local development and the embedded demo: DEBUG on unless the environment says otherwise."""
from .base import *  # noqa: F401,F403
from .base import VAR_DIR
from .env import env_bool

DEBUG = env_bool("DEBUG", True)

# The embedded default keeps its SQLite file, broker folders and media under ./var.
VAR_DIR.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
