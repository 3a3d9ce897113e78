"""The site's icon: pages name it, and /favicon.ico (asked for by pages that do not, such as the
admin) redirects to it instead of answering 404."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_favicon_ico_redirects_to_the_icon_and_pages_name_it(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"].endswith("studyserver/favicon.svg")
    icon = client.get(answer["Location"])
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)
    login = client.get(reverse("login")).content.decode()
    assert f'<link rel="icon" href="{answer["Location"]}"' in login
