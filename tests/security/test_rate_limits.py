"""Rate limits: participants per token (not per IP), consent per IP, logins per IP + username (every
spelling of one name counted as one) on every login route; 429 with a message and Retry-After;
counted in Redis when CACHE_URL points at it. A cache that cannot be reached lets participants and
researchers through (nothing a participant sends is refused because Redis restarts) and refuses
logins (503): an outage never allows unlimited password guessing."""
import socket
import uuid

import pytest
import redis
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.core.cache import caches
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.test import APIClient

from annotations.models import Participant
from studyserver import throttling
from studyserver.researcher.api.studies import AuthTokenApi
from studyserver.throttling import LoginThrottle
from tests.annotations.test_participation import tiny_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}

    return set_rates


def start(client, study, **extra):
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json", **extra)
    assert answer.status_code == 201, answer.content
    return answer.json()["token"]


def assert_throttled(answer):
    assert answer.status_code == 429, (answer.status_code, answer.content[:200])
    assert answer.json()["error"] == "throttled" and answer.json()["detail"]
    assert int(answer["Retry-After"]) >= 1


def test_the_defaults_fit_a_prolific_burst(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    number, period = rates["participant"].split("/")
    assert int(number) / {"s": 1, "m": 60, "h": 3600}[period[0]] >= 2  # >= 2 req/s each, the benchmark needs ~1
    number, period = rates["participant_start"].split("/")
    assert int(number) / {"s": 1, "m": 60, "h": 3600}[period[0]] >= 10  # 500 consents from one IP in under a minute
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


def test_participants_are_limited_per_token_not_per_ip(researcher, rates):
    rates(participant="4/min")
    study = tiny_study(researcher)
    client = APIClient()
    alice, bob = start(client, study), start(client, study)
    url = reverse("participant-trial-next", args=[alice])
    for _ in range(4):
        assert client.get(url).status_code == 200
    assert_throttled(client.get(url))
    assert_throttled(client.post(reverse("participant-calibration", args=[alice]), {"card_width_px": 300}, format="json"))
    # bob, from the same address, is not held back by alice
    for _ in range(4):
        assert client.get(reverse("participant-trial-next", args=[bob])).status_code == 200


def test_consent_is_limited_per_ip(researcher, rates):
    rates(participant_start="3/min")
    study = tiny_study(researcher, participants_per_stimulus=50)
    client = APIClient()
    for _ in range(3):
        start(client, study)
    assert_throttled(client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json"))
    start(client, study, REMOTE_ADDR="10.0.0.7")  # another address
    # a client-sent X-Forwarded-For is not trusted (NUM_PROXIES=0): it does not reset the count
    spoofed = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json",
                          HTTP_X_FORWARDED_FOR=f"10.9.{uuid.uuid4().int % 250}.1")
    assert_throttled(spoofed)
    assert Participant.objects.count() == 4


def test_api_logins_are_limited_per_ip_and_username(researcher, rates):
    rates(login="3/min")
    client = APIClient()
    url = reverse("api-token")
    for _ in range(3):
        assert client.post(url, {"username": researcher.username, "password": "wrong"}, format="json").status_code == 400
    assert_throttled(client.post(url, {"username": researcher.username, "password": "pw-for-tests"}, format="json"))
    # someone else logging in from the same address is not locked out
    assert client.post(url, {"username": "someone-else", "password": "x"}, format="json").status_code == 400
    # nor is the same user from another address
    other = client.post(url, {"username": researcher.username, "password": "pw-for-tests"}, format="json", REMOTE_ADDR="10.1.1.1")
    assert other.status_code == 200 and other.json()["token"]


def assert_login_page_refused(answer, status=429):
    """A login page's refusal: a page (not JSON) saying when to try again, with Retry-After."""
    assert answer.status_code == status, (answer.status_code, answer.content[:200])
    assert answer["Content-Type"].startswith("text/html")
    assert int(answer["Retry-After"]) >= 1
    page = answer.content.decode()
    assert f"{answer['Retry-After']} seconds" in page
    assert ("try again" in page) if status == 503 else ("Too many login attempts" in page)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_login_pages_are_limited_per_ip_and_username(researcher, rates, client, url):
    rates(login="2/min")
    for _ in range(2):
        assert client.post(url, {"username": researcher.username, "password": "wrong"}).status_code == 200
    assert_login_page_refused(client.post(url, {"username": researcher.username, "password": "pw-for-tests"}))
    assert "_auth_user_id" not in client.session
    assert client.get(url).status_code == 200  # the page itself still shows
    assert client.post(url, {"username": "another", "password": "wrong"}).status_code == 200


def spellings(username: str) -> list[str]:
    """Other spellings of `username` that Django's login form takes for it (or that differ in case)."""
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in username)
    return [f"\uff52{username[1:]}", f"\U0001d42b{username[1:]}", fullwidth, username.upper(),
            f"  {username}\u3000", username.title()]


def test_login_name_is_one_for_every_spelling():
    login_name = throttling.login_name
    assert {login_name(name) for name in spellings("r-ab12")} == {"r-ab12"}
    assert login_name("\ufb01le") == login_name("FILE") == "file"  # the ligature fi, and case
    assert login_name("Stra\u00dfe") == login_name("STRASSE")  # case folding, not lower()
    assert login_name("alice") != login_name("alicia")


@pytest.fixture
def staff(researcher):
    researcher.is_staff = True  # so the admin's login page logs them in
    researcher.save(update_fields=["is_staff"])
    return researcher


def login_attempt(route: str, username: str, password: str, remote_addr: str = "127.0.0.1"):
    """POST a login on `route` from a fresh client; (answer, logged in?)."""
    if route == "api":
        answer = APIClient().post(reverse("api-token"), {"username": username, "password": password},
                                  format="json", REMOTE_ADDR=remote_addr)
        return answer, answer.status_code == 200 and "token" in answer.json()
    client = APIClient()
    answer = client.post(route, {"username": username, "password": password}, REMOTE_ADDR=remote_addr)
    return answer, "_auth_user_id" in client.session


LOGIN_ROUTES = ["/accounts/login/", "/admin/login/", "api"]


def assert_refused(route: str, answer, status: int):
    if route == "api":
        assert answer.status_code == status, (answer.status_code, answer.content[:200])
        assert answer.json()["error"] == ("throttled" if status == 429 else "login_unavailable")
        assert answer.json()["detail"] and int(answer["Retry-After"]) >= 1
    else:
        assert_login_page_refused(answer, status)


@pytest.mark.parametrize("route", LOGIN_ROUTES)
def test_no_spelling_of_a_username_buys_a_fresh_allowance(staff, rates, route):
    # The form logs a spelling in as the account (the API token endpoint would not: its names are
    # taken as sent), so every spelling must draw on one allowance.
    if route == "/accounts/login/":
        assert login_attempt(route, f"\U0001d42b{staff.username[1:]}", "pw-for-tests")[1]
        caches["default"].clear()
    rates(login="2/min")
    for _ in range(2):
        answer, logged_in = login_attempt(route, staff.username, "wrong")
        assert answer.status_code in (200, 400) and not logged_in
    for name in spellings(staff.username):
        answer, logged_in = login_attempt(route, name, "pw-for-tests")
        assert not logged_in, name
        assert_refused(route, answer, 429)
    # another address still has its own allowance (so the count is per IP + name, not per name)
    assert login_attempt(route, staff.username, "pw-for-tests", remote_addr="10.2.2.2")[1]


def test_every_login_route_is_limited_by_the_login_throttle():
    """Every route whose view checks a password resolves to a view limited by LoginThrottle (the
    admin's own login/ pattern is shadowed by the limited one, which this finds by resolving)."""
    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.callback

    def checks_passwords(view) -> bool:
        view = getattr(view, "__wrapped__", view)
        view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
        return (getattr(view, "__func__", None) is admin.AdminSite.login
                or (view_class is not None and issubclass(view_class, (LoginView, AuthTokenApi, ObtainAuthToken))))

    def limited(view) -> bool:
        cls = getattr(view, "cls", None)
        if cls is not None:
            return any(issubclass(throttle, LoginThrottle) for throttle in cls.throttle_classes)
        return getattr(view, "throttle_class", None) is LoginThrottle

    routes = {"/" + route.lstrip("^").rstrip("$") for route, view in walk(get_resolver()) if checks_passwords(view)}
    assert routes >= {"/accounts/login/", "/admin/login/", "/api/v1/auth/token/"}, routes
    for route in routes:
        assert limited(resolve(route).func), route


@pytest.fixture
def cache_down(settings):
    """The cache is Redis on a port where nothing listens (a Redis that is down, not a mock)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    with pytest.raises(redis.ConnectionError):
        caches["default"].get("anything")
    return port


@pytest.mark.parametrize("route", LOGIN_ROUTES)
def test_logins_fail_closed_when_the_cache_is_down(staff, cache_down, route):
    for _ in range(3):
        answer, logged_in = login_attempt(route, staff.username, "pw-for-tests")
        assert not logged_in
        assert_refused(route, answer, 503)
    assert not Token.objects.filter(user=staff).exists()
    if route != "api":
        assert APIClient().get(route).status_code == 200  # the page itself still shows


def test_a_bad_login_body_is_a_400_even_when_the_cache_is_down(cache_down):
    answer = APIClient().post(reverse("api-token"), b"{not json", content_type="application/json")
    assert answer.status_code == 400 and answer.json()["error"] == "parse_error"


@pytest.fixture
def redis_cache(settings):
    prefix = f"studyserver-test-throttle-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/14", "KEY_PREFIX": prefix}}
    yield prefix
    server = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    keys = list(server.scan_iter(match=f"{prefix}*"))
    if keys:
        server.delete(*keys)


def test_counts_live_in_redis_when_configured(researcher, rates, redis_cache):
    rates(participant="3/min")
    study = tiny_study(researcher)
    client = APIClient()
    token = start(client, study)
    url = reverse("participant-trial-next", args=[token])
    for _ in range(3):
        assert client.get(url).status_code == 200
    assert_throttled(client.get(url))
    keys = list(redis.Redis.from_url("redis://127.0.0.1:6379/14").scan_iter(match=f"{redis_cache}*throttle_participant_[0-9a-f]*"))
    assert len(keys) == 1 and token.encode() not in keys[0]  # the token itself is never a key
    # another web process (a fresh connection) sees the same count: it is Redis's, not this process's
    caches["default"].close()
    assert_throttled(client.get(url))
    caches["default"].delete(keys[0].decode().split(":", 2)[2])
    assert client.get(url).status_code == 200


def test_an_unreachable_cache_lets_participants_through(researcher, rates, settings):
    rates(participant="1/min")
    study = tiny_study(researcher)
    client = APIClient()
    token = start(client, study)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": {"socket_connect_timeout": 0.2}}}
    for _ in range(3):
        answer = client.get(reverse("participant-trial-next", args=[token]))
        assert answer.status_code == 200, answer.content


def test_an_unreachable_cache_lets_researchers_through(researcher, rates, cache_down):
    rates(researcher="1/min")
    client = APIClient()
    client.force_authenticate(researcher)
    for _ in range(3):
        assert client.get(reverse("api-studies")).status_code == 200


def test_the_consent_form_is_limited_per_ip_too(researcher, rates, client):
    rates(participant_start="2/min")
    study = tiny_study(researcher, participants_per_stimulus=50)
    url = reverse("study-entry", args=[study.slug])
    for i in range(2):
        assert client.post(url, {"consent": "yes", "PROLIFIC_PID": f"p{i}"}).status_code == 302
    assert_throttled(client.post(url, {"consent": "yes", "PROLIFIC_PID": "p9"}))
    assert client.get(url).status_code in (200, 302)  # reading (or resuming) is not counted
    assert Participant.objects.count() == 2
