"""A researcher runs a whole study through the REST API alone, on the real stack (PostgreSQL, Redis,
a real Celery worker computing Grad-CAM): token, create, zip upload, a glass-blur condition, launch,
participants answer through the participant API; progress, scores, the report's tables and the
exports come back."""
import csv
import io
import json
import uuid
import zipfile

import numpy as np
import pytest
from rest_framework.test import APIClient

from explain.models import ExplanationJob
from studyserver.researcher.demo import demo_photo_bytes
from studyserver.storage import array_load
from tests.annotations.zipfiles import csv_bytes, make_zip
from tests.conftest import paint_payload, rect_stroke, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def ok(answer, code=200):
    assert answer.status_code == code, answer.content
    return answer.json()


def participant_takes_part(slug: str) -> int:
    """Consent, then answer every trial handed out by painting the middle of the image; trials done."""
    client = APIClient()
    token = ok(client.post(f"/api/v1/studies/{slug}/participants/", {"consent": True}, format="json"), 201)["token"]
    answered = 0
    while True:
        step = ok(client.get(f"/api/v1/participant/{token}/next/"))
        if step["done"]:
            return answered
        trial = step["trial"]
        w, h = trial["width"], trial["height"]
        stroke = rect_stroke(w * 0.3, h * 0.2, w * 0.8, h * 0.9, radius=10)
        body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([stroke], width=w, height=h), "duration_ms": 4000}
        ok(client.post(f"/api/v1/participant/{token}/trials/{trial['id']}/response/", body, format="json"), 201)
        answered += 1


# One worker serves both queues here; insertion/deletion (tens of seconds a map) is not what this
# journey is about and would queue the score updates behind it (tests/explain covers it).
@pytest.mark.worker_env(EXPLAIN_FAITHFULNESS="0")
def test_a_study_run_through_the_api_alone(celery_worker_process, researcher):
    worker = celery_worker_process
    anonymous = APIClient()
    token = ok(anonymous.post("/api/v1/auth/token/", {"username": researcher.username, "password": "pw-for-tests"}, format="json"))["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    study = ok(api.post("/api/v1/studies/", {
        "title": "Cats and coffee under glass", "task_kinds": ["paint"], "participants_per_stimulus": 2,
        "stimuli_per_participant": 2, "explain_config": [{"model": "efficientnet_lite0", "method": "gradcam"}],
    }, format="json"), 201)
    slug = study["slug"]
    archive = make_zip({
        "photos/chelsea.png": demo_photo_bytes("chelsea.png"),
        "photos/coffee.png": demo_photo_bytes("coffee.png"),
        "labels.csv": csv_bytes("photos/chelsea.png,Egyptian cat,original,", "photos/coffee.png,967,original,"),
    })
    archive_file = io.BytesIO(archive)
    archive_file.name = "stimuli.zip"
    cat, coffee = ok(api.post(f"/api/v1/studies/{slug}/stimuli/zip/", {"archive": archive_file}, format="multipart"), 201)
    (blurred,) = ok(api.post(f"/api/v1/studies/{slug}/variants/", {
        "corruptions": ["glass_blur"], "severities": [2], "seed": 2019, "sources": [cat["id"]],
    }, format="json"), 201)
    assert (blurred["source"], blurred["condition"], blurred["class_index"]) == (cat["id"], "glass_blur-2", 285)
    assert ok(api.post(f"/api/v1/studies/{slug}/launch/"))["status"] == "live"

    def progress():
        return ok(api.get(f"/api/v1/studies/{slug}/progress/"))

    wait_for(lambda: progress()["jobs"]["by_status"]["done"] == 3, timeout=300, what="3 Grad-CAM jobs", process=worker)
    assert progress()["jobs"]["failed"] == []

    # Participants come until every stimulus has its 2 answers (nobody sees the cat twice).
    for _ in range(8):
        if progress()["responses"]["fraction"] == 1.0:
            break
        participant_takes_part(slug)
    done = progress()
    assert done["responses"] == {"done": 6, "target": 6, "fraction": 1.0}
    assert done["estimate"]["remaining"] == 0 and done["estimate"]["seconds_left"] == 0
    assert done["participants"]["completed"] == done["participants"]["started"] >= 3

    def scores():
        return ok(api.get(f"/api/v1/studies/{slug}/scores/"))

    def complete():
        groups = scores()
        return groups and all(len(g["values"]) == 3 and all(v["n_participants"] == 2 for v in g["values"]) for g in groups)

    wait_for(complete, timeout=120, what="scores of 3 stimuli from 2 participants each", process=worker)
    groups = {g["metric"]: g for g in scores()}
    assert {"pcc", "sim", "iou_top10", "iou_top30"} <= set(groups)
    pcc = groups["pcc"]
    assert (pcc["model"], pcc["method"], pcc["task_kind"]) == ("efficientnet_lite0", "gradcam", "paint")
    assert [c["condition"] for c in pcc["by_condition"]] == ["glass_blur-2", "original"]
    assert pcc["summary"]["n"] == 3 and -1 <= pcc["summary"]["mean"] <= 1

    # The corruption changed what the model sees: its map and its confidence differ from the original's.
    maps = {j.image_sha256: j.map for j in ExplanationJob.objects.select_related("map").filter(status="done")}
    original, corrupted = maps[cat["sha256"]], maps[blurred["sha256"]]
    a, b = array_load(original.comparison_file).ravel(), array_load(corrupted.comparison_file).ravel()
    assert np.corrcoef(a, b)[0, 1] < 0.999 and original.target_probability != corrupted.target_probability
    assert ok(api.post(f"/api/v1/studies/{slug}/close/"))["status"] == "closed"

    # The report's tables and the exports come back through the API too.
    links = ok(api.get(f"/api/v1/studies/{slug}/results/"))
    summary = api.get(next(t["url"] for t in links["tables"] if t["name"] == "summary"))
    rows = list(csv.DictReader(io.StringIO(summary.content.decode())))
    assert {(r["method"], r["condition"]) for r in rows} == {("gradcam", "original"), ("gradcam", "glass_blur-2")}
    export = api.get(links["exports"]["human_maps"]["npy"])
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content))).read("manifest.json"))
    assert len(manifest["entries"]) == 3 and all(e["has_map"] for e in manifest["entries"])
    responses = b"".join(api.get(links["exports"]["responses"]["jsonl"]).streaming_content).decode().splitlines()
    assert len(responses) == 6
