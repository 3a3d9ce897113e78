"""The site's URLconf plus two views that crash, one under /api/ and one outside it, so tests can see
what a 500 answers (the error handlers come with the star import)."""
from django.urls import path

from studyserver.urls import *  # noqa: F401,F403
from studyserver.urls import urlpatterns as site_urlpatterns


def crash(_request):
    raise RuntimeError("a view failed (tests/security/failing_urls.py)")


urlpatterns = [path("api/v1/crash/", crash), path("crash/", crash), *site_urlpatterns]
