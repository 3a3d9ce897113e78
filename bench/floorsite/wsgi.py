"""WSGI entry point of the floor (gunicorn floorsite.wsgi, with bench/ on the Python path)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floorsite.settings")
application = get_wsgi_application()
