"""The floor: the least a Django + DRF endpoint that stores a participant's answer can cost.

A minimal Django project (settings.py: SecurityMiddleware and CommonMiddleware only, no sessions,
no authentication, no throttles) with one DRF APIView (`POST /store/`) that parses the JSON body and
stores it with one INSERT (`models.StoredBody`, a jsonb column) in the same PostgreSQL database as
the project under bench. bench/participant_cpu.py serves it with the same gunicorn command line as
the project's web and prints each participant endpoint's CPU as a multiple of this one's.

Serve it with `PYTHONPATH=bench DJANGO_SETTINGS_MODULE=floorsite.settings gunicorn floorsite.wsgi`
and create its table with `python -m django migrate --run-syncdb` under the same settings.
"""
