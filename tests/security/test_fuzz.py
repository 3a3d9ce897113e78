"""The schema fuzzer (bench/fuzz.py) on a small budget: a live gunicorn, a fresh PostgreSQL database,
schemathesis drawing valid and invalid requests for every operation of /api/schema/. No 5xx, and
every error is JSON with a message. The full run (>= 1000 requests) is the benchmark command."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from bench.fuzz import problem_of

ROOT = Path(__file__).resolve().parents[2]


class _Answer:
    def __init__(self, status_code, text):
        self.status_code, self.text = status_code, text

    def json(self):
        return json.loads(self.text)


def test_the_fuzzers_check_tells_good_answers_from_bad():
    assert problem_of(_Answer(200, "<html>")) is None
    assert problem_of(_Answer(404, '{"error": "not_found", "detail": "no such study"}')) is None
    assert "not JSON" in problem_of(_Answer(404, "<!doctype html>"))
    assert "no message" in problem_of(_Answer(400, '{"fields": {}}'))
    assert problem_of(_Answer(502, "")).startswith("502")


@pytest.mark.django_db
def test_unknown_api_urls_answer_json_and_pages_html():
    client = Client()
    api = client.get("/api/v1/studies/not%20a%20slug/")
    assert api.status_code == 404 and api.json()["error"] == "not_found" and api.json()["detail"]
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.slow
def test_fuzzing_the_schema_finds_no_server_error(tmp_path):
    out = tmp_path / "fuzz.json"
    result = subprocess.run([sys.executable, "bench/fuzz.py", "--requests", "160", "--seed", "1", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["requests"] >= 100
    assert not report["failures"], json.dumps(report["failures"][:10], indent=1)
    assert result.returncode == 0, result.stdout[-2000:]
    statuses = {key for row in report["counts"].values() for key in row}
    assert "2xx" in statuses and "4xx" in statuses  # both accepted and refused requests were made
