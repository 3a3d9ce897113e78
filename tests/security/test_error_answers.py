"""Every answer carries the security headers, whoever answers it (a middleware refusing early, static
files, redirects, Django's error pages) and whatever DEBUG says; under /api/ every error is JSON in
the documented shape {"error", "detail", "fields"}, never Django's debug page (which lists the URL
patterns, settings and source)."""
import pytest
from django.test import Client

from tests.security.test_headers import assert_secure_headers

pytestmark = pytest.mark.django_db

# (name, method, path, extra request arguments, expected status)
ANSWERS = [
    ("413 api", "post", "/api/v1/auth/token/", {"data": "{}", "content_type": "application/json",
                                                "CONTENT_LENGTH": str(10**10)}, 413),
    ("413 page", "post", "/accounts/login/", {"data": "x=1", "content_type": "application/x-www-form-urlencoded",
                                              "CONTENT_LENGTH": str(10**10)}, 413),
    ("NUL in api path", "get", "/api/v1/studies/a\x00b/", {}, 400),
    ("NUL in query", "get", "/dashboard/", {"QUERY_STRING": "q=%00"}, 400),
    ("bad Host api", "get", "/api/v1/studies/", {"HTTP_HOST": "evil.example"}, 400),
    ("bad Host page", "get", "/accounts/login/", {"HTTP_HOST": "evil.example"}, 400),
    ("404 api", "get", "/api/v1/no-such-endpoint/", {}, 404),
    ("404 api outside v1", "get", "/api/nothing-here", {}, 404),
    ("404 page", "get", "/no-such-page/", {}, 404),
    ("405 api (DRF)", "get", "/api/v1/auth/token/", {}, 405),
    ("405 api (schema view)", "post", "/api/schema/", {}, 405),
    ("405 page", "get", "/accounts/logout/", {}, 405),
    ("401 api", "get", "/api/v1/studies/", {}, 401),
    ("500 api", "get", "/api/v1/crash/", {}, 500),
    ("500 page", "get", "/crash/", {}, 500),
    ("static file", "get", "/static/studyserver/site.css", {}, 200),
    ("redirect", "get", "/admin", {}, 301),
]


@pytest.fixture(params=[False, True], ids=["DEBUG off", "DEBUG on"])
def debug(request, settings):
    settings.DEBUG = request.param
    settings.ROOT_URLCONF = "tests.security.failing_urls"
    return request.param


def answer(name, method, path, extra):
    client = Client(raise_request_exception=False)
    extra = dict(extra)
    data = extra.pop("data", None)
    content_type = extra.pop("content_type", None)
    if method == "post":
        return client.post(path, data, content_type=content_type or "application/octet-stream", **extra)
    return client.get(path, **extra)


@pytest.mark.parametrize("name, method, path, extra, status", ANSWERS, ids=[case[0] for case in ANSWERS])
def test_every_answer_carries_the_security_headers(debug, name, method, path, extra, status):
    response = answer(name, method, path, extra)
    assert response.status_code == status, (name, response.status_code, response.content[:300])
    assert_secure_headers(response)
    assert response["Permissions-Policy"].startswith("camera=()")


@pytest.mark.parametrize("name, method, path, extra, status",
                         [case for case in ANSWERS if case[2].startswith("/api/") and case[4] >= 400],
                         ids=[case[0] for case in ANSWERS if case[2].startswith("/api/") and case[4] >= 400])
def test_api_errors_have_the_documented_shape(debug, name, method, path, extra, status):
    response = answer(name, method, path, extra)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json", (name, response["Content-Type"], response.content[:300])
    body = response.json()
    assert set(body) == {"error", "detail", "fields"} and body["error"] and body["detail"], body
    text = response.content.decode()
    assert "URLconf" not in text and "Traceback" not in text and "RuntimeError" not in text, text[:300]


def test_a_405_keeps_its_allow_header(debug):
    response = Client().post("/api/schema/")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert "GET" in response["Allow"]
