"""The Celery app. Settings come from Django settings under the CELERY_ namespace.

Queues: `explain` (explanation jobs: one at a time per worker, solo pool, prefetch 1) and `default`
(human map updates and score refreshes).
"""
import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings.local")
# One BLAS thread per process: workers are processes already, and on a busy machine threaded BLAS
# made a single matrix product 3-4x slower (bench/analysis.py). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = Celery("studyserver")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def broker_folders_ensure() -> None:
    """kombu's filesystem broker needs its folders to exist (embedded default)."""
    if str(app.conf.broker_url or "").startswith("filesystem://"):
        options = app.conf.broker_transport_options or {}
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)


app.on_after_configure.connect(lambda sender, **_: broker_folders_ensure(), weak=False)
