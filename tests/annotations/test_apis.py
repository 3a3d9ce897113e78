import json
import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import Participant, Response, Trial
from annotations.payloads import MAX_BODY_BYTES, MAX_POINTS
from tests.annotations.test_participation import tiny_study
from tests.conftest import paint_payload, rect_stroke

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


def start(client, study, **extra):
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": True, **extra}, format="json")
    assert answer.status_code in (200, 201), answer.content
    return answer.json()["token"]


def next_trial(client, token):
    return client.get(reverse("participant-trial-next", args=[token])).json()["trial"]


def test_participant_journey_through_the_api(client, make_study):
    study = make_study(launch=True)
    token = start(client, study, external_id="PROLIFIC-1")
    for i in range(2):
        nxt = client.get(reverse("participant-trial-next", args=[token])).json()
        assert nxt["done"] is False and nxt["progress"] == {"done": i, "total": 2}
        trial = nxt["trial"]
        assert trial["task_kind"] == "paint" and trial["label"] in ("Egyptian cat", "espresso")
        assert trial["display"]["width"] == 500 and trial["params"]["min_area"] == 0.005
        assert trial["params"]["brush_radii"][0] == pytest.approx(6 * max(trial["width"], trial["height"]) / 500, abs=1e-3)
        assert "role" not in trial and "known_region" not in trial  # catch trials look like any other
        image = client.get(trial["image_url"])
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(5, 5, 60, 60)]), "duration_ms": 3000}
        url = reverse("participant-response", args=[token, trial["id"]])
        assert client.post(url, body, format="json").status_code == 201
        assert client.post(url, body, format="json").status_code == 200  # the retry stores nothing new
    done = client.get(reverse("participant-trial-next", args=[token])).json()
    assert done["done"] is True and done["completion_code"] == study.completion_code
    assert Response.objects.count() == 2


def test_consent_is_required(client, make_study):
    study = make_study(launch=True)
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": False}, format="json")
    assert answer.status_code == 400 and answer.json()["error"] == "consent_required"
    assert Participant.objects.count() == 0


def test_a_full_study_answers_410(client, researcher):
    study = tiny_study(researcher, n_main=1, participants_per_stimulus=1, stimuli_per_participant=1)
    token = start(client, study)
    next_trial(client, token)
    answer = client.post(reverse("participant-start", args=[study.slug]), {"consent": True}, format="json")
    assert answer.status_code == 410 and answer.json()["error"] == "study_full"


def test_practice_and_calibration_endpoints(client, researcher):
    study = tiny_study(researcher, task_kinds=["bubble"], task_params={"units": "deg"})
    token = start(client, study)
    assert client.get(reverse("participant-trial-next", args=[token])).json()["error"] == "calibration_required"
    bad = client.post(reverse("participant-calibration", args=[token]), {"card_width_px": "wide"}, format="json")
    assert bad.status_code == 400 and "card_width_px" in bad.json()["fields"]
    calibrated = client.post(reverse("participant-calibration", args=[token]), {"card_width_px": 342.4, "dpr": 2}, format="json")
    assert calibrated.status_code == 200 and calibrated.json()["px_per_cm"] == pytest.approx(40.0)
    practice = client.get(reverse("participant-practice", args=[token])).json()
    assert practice["task_kind"] == "bubble" and practice["done"] is False and practice["region"]["polygons"]
    assert practice["params"]["min_clicks"] == 2 and practice["params"]["viewing_ms"] == 10000
    image = client.get(practice["image_url"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    payload = {"display": practice["display"], "pointer_types": ["mouse"], "clicks": [[300, 215, 900]],
               "bubble_radius": 30, "blur_sigma": 30, "viewing_ms": 10000}
    refused = client.post(reverse("participant-practice", args=[token]), {"payload": payload}, format="json")
    assert refused.status_code == 400 and "clicks" in refused.json()["fields"]
    payload["clicks"].append([310, 220, 1800])
    assert client.post(reverse("participant-practice", args=[token]), {"payload": payload}, format="json").status_code == 200
    assert Participant.objects.get(token=token).practice_done_at is not None
    assert Response.objects.count() == 0 and Trial.objects.count() == 0


# --- bad input: each a clear 4xx, and nothing stored ---------------------------------------------


def _raw_post(client, url, text):
    return client.generic("POST", url, text, content_type="application/json")


def _nan_body():
    return '{"client_uuid": "%s", "payload": {"display": {"width": 500, "height": 400}, "strokes": [{"radius": 5, "points": [[NaN, 3, 0]]}]}}' % uuid.uuid4()


@pytest.mark.parametrize(
    "body,status,field",
    [
        ({"client_uuid": "not-a-uuid", "payload": {}}, 400, "client_uuid"),
        ({"payload": {}}, 400, "client_uuid"),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 5, "points": [[9999, 1, 0]]}])}, 400, "strokes[0].points[0].x"),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 5, "points": [[1, -0.5, 0]]}])}, 400, "strokes[0].points[0].y"),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 5, "points": [[1, 1, -20]]}])}, 400, "strokes[0].points[0].t"),
        ({"client_uuid": "U", "payload": paint_payload([])}, 400, "strokes"),
        ({"client_uuid": "U", "payload": "strokes"}, 400, "payload"),
        ({"client_uuid": "U", "payload": paint_payload([rect_stroke(5, 5, 60, 60)]), "duration_ms": -1}, 400, "duration_ms"),
        (_nan_body(), 400, "strokes[0].points[0].x"),
        ('{"client_uuid": ', 400, None),
        ({"client_uuid": "U", "payload": paint_payload([{"radius": 1, "points": [[1, 1, 0]] * (MAX_POINTS + 1)}])}, 413, "strokes"),
    ],
)
def test_bad_submits_get_a_clear_4xx_and_store_nothing(client, researcher, body, status, field):
    study = tiny_study(researcher)
    token = start(client, study)
    trial = next_trial(client, token)
    url = reverse("participant-response", args=[token, trial["id"]])
    if isinstance(body, dict):
        body = json.dumps({**body, "client_uuid": str(uuid.uuid4())} if body.get("client_uuid") == "U" else body)
    answer = _raw_post(client, url, body)
    assert answer.status_code == status, answer.content[:300]
    assert answer.json()["detail"]
    if field:
        assert field in answer.json()["fields"], answer.json()
    assert Response.objects.count() == 0
    assert Trial.objects.get(pk=trial["id"]).status == Trial.Status.ASSIGNED


def test_an_oversized_body_is_413_before_it_is_read(client, researcher):
    study = tiny_study(researcher)
    token = start(client, study)
    trial = next_trial(client, token)
    points = [[1.25, 1.25, 1]] * (MAX_BODY_BYTES // 15)
    body = json.dumps({"client_uuid": str(uuid.uuid4()), "payload": paint_payload([{"radius": 2, "points": points}])})
    assert len(body) > MAX_BODY_BYTES
    answer = _raw_post(client, reverse("participant-response", args=[token, trial["id"]]), body)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large" and str(MAX_BODY_BYTES) in answer.json()["detail"]
    assert Response.objects.count() == 0


def test_foreign_trials_forged_and_reused_tokens(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=1)
    alice, bob = start(client, study), start(client, study)
    trial = next_trial(client, alice)
    body = {"client_uuid": str(uuid.uuid4()), "payload": paint_payload([rect_stroke(5, 5, 40, 40)])}
    # a trial that is not the participant's
    assert client.post(reverse("participant-response", args=[bob, trial["id"]]), body, format="json").status_code == 404
    assert client.get(reverse("participant-trial-image", args=[bob, trial["id"]])).status_code == 404
    # forged tokens
    forged = "x" * 43
    for url in [reverse("participant-trial-next", args=[forged]), reverse("participant-practice", args=[forged]),
                reverse("participant-trial-image", args=[forged, trial["id"]])]:
        assert client.get(url).status_code == 404
    assert client.post(reverse("participant-response", args=[forged, trial["id"]]), body, format="json").status_code == 404
    assert client.post(reverse("participant-calibration", args=[forged]), {"card_width_px": 300}, format="json").status_code == 404
    assert Response.objects.count() == 0
    # alice finishes; her token used again for a new answer is refused, a retry of her last one is not
    url = reverse("participant-response", args=[alice, trial["id"]])
    assert client.post(url, body, format="json").status_code == 201
    assert client.get(reverse("participant-trial-next", args=[alice])).json()["done"] is True
    assert client.post(url, body, format="json").status_code == 200  # the same client UUID: a retry
    again = client.post(url, {**body, "client_uuid": str(uuid.uuid4())}, format="json")
    assert again.status_code == 410 and "finished" in again.json()["detail"]
    # a client UUID reused for another trial
    bobs = next_trial(client, bob)
    reused = client.post(reverse("participant-response", args=[bob, bobs["id"]]), body, format="json")
    assert reused.status_code == 409
    assert Response.objects.count() == 1


def test_a_client_uuid_reused_for_another_of_ones_own_trials_is_409(client, researcher):
    study = tiny_study(researcher, stimuli_per_participant=2)
    token = start(client, study)
    key = str(uuid.uuid4())
    first = next_trial(client, token)
    body = {"client_uuid": key, "payload": paint_payload([rect_stroke(5, 5, 40, 40)])}
    assert client.post(reverse("participant-response", args=[token, first["id"]]), body, format="json").status_code == 201
    second = next_trial(client, token)
    answer = client.post(reverse("participant-response", args=[token, second["id"]]), body, format="json")
    assert answer.status_code == 409 and "another trial" in answer.json()["detail"]
    assert Response.objects.count() == 1


def test_a_study_never_launched_answers_the_api_as_an_unknown_one(client, researcher):
    draft = tiny_study(researcher, launch=False)
    answers = {slug: client.post(reverse("participant-start", args=[slug]), {"consent": True}, format="json")
               for slug in (draft.slug, "no-such-study")}
    assert {a.status_code for a in answers.values()} == {404}
    assert answers[draft.slug].content.replace(draft.slug.encode(), b"X") == answers["no-such-study"].content.replace(b"no-such-study", b"X")
    assert Participant.objects.count() == 0


# --- the schema: every participant answer typed, and the real answers follow it ----------------


def _schema() -> dict:
    import yaml

    answer = APIClient().get("/api/schema/")
    assert answer.status_code == 200
    return yaml.safe_load(answer.content)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _untyped(schema: dict, node, seen: set) -> list[str]:
    """Places in `node` (followed through $ref) that leave a value untyped: `additionalProperties: {}`,
    an object without properties, or a schema without a type or a composition."""
    if isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return [f"{name}: {p}" for p in _untyped(schema, _resolve(schema, node), seen)]
    problems = []
    if node.get("additionalProperties") == {} or node.get("additionalProperties") is True:
        problems.append("additionalProperties: {}")
    if node.get("type") == "object" and not node.get("properties") and "additionalProperties" not in node:
        problems.append("an object without properties")
    if not ({"type", "oneOf", "allOf", "anyOf", "$ref"} & set(node)):
        problems.append(f"no type: {node}")
    for key in ("oneOf", "allOf", "anyOf"):
        for part in node.get(key, []):
            problems += _untyped(schema, part, seen)
    for name, prop in node.get("properties", {}).items():
        problems += [f"{name}.{p}" for p in _untyped(schema, prop, seen)]
    if isinstance(node.get("items"), dict):
        problems += [f"[].{p}" for p in _untyped(schema, node["items"], seen)]
    if isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]:
        problems += _untyped(schema, node["additionalProperties"], seen)
    return problems


def _participant_operations(schema: dict):
    for path, operations in schema["paths"].items():
        if "/participant" in path:
            for method, operation in operations.items():
                if method != "parameters":
                    yield f"{method.upper()} {path}", operation


def test_the_schema_types_every_participant_answer_and_error():
    schema = _schema()
    operations = dict(_participant_operations(schema))
    assert len(operations) == 8, sorted(operations)
    for name, operation in operations.items():
        for code, answer in operation["responses"].items():
            content = answer.get("content", {})
            if "image/png" in content:
                continue
            body = content["application/json"]["schema"]
            assert not _untyped(schema, body, set()), (name, code, _untyped(schema, body, set()))
            if code >= "400":
                assert body["$ref"].endswith("/ErrorOutput") and answer["description"], (name, code)
        assert "404" in operation["responses"], name
    next_answer = _resolve(schema, operations["GET /api/v1/participant/{token}/next/"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert len(next_answer["oneOf"]) == 2  # a trial, or the completion
    submit = _resolve(schema, operations["POST /api/v1/participant/{token}/trials/{trial_id}/response/"]["responses"]["201"]["content"]["application/json"]["schema"])
    assert submit["properties"]["next"]["nullable"] and submit["properties"]["next"]["allOf"][0]["$ref"].endswith("/NextOutput")
    start = operations["POST /api/v1/studies/{slug}/participants/"]["responses"]
    assert {"200", "201", "400", "404", "409", "410"} <= set(start)


def _conforms(schema: dict, node: dict, value, where: str = "$") -> list[str]:
    """Whether `value` follows the OpenAPI 3.0 schema `node` (the subset the schema uses); keys a
    schema does not list count as problems too, so no field goes undocumented."""
    node = _resolve(schema, node)
    if value is None:
        return [] if node.get("nullable") else [f"{where}: null"]
    if "allOf" in node:
        return [p for part in node["allOf"] for p in _conforms(schema, part, value, where)]
    if "oneOf" in node:
        fits = [part for part in node["oneOf"] if not _conforms(schema, part, value, where)]
        return [] if len(fits) == 1 else [f"{where}: fits {len(fits)} of oneOf"]
    kind = node.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if kind and (not isinstance(value, checks[kind]) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: {value!r} is not {kind}"]
    if "enum" in node and value not in node["enum"]:
        return [f"{where}: {value!r} not in {node['enum']}"]
    problems = []
    if kind == "object":
        properties = node.get("properties", {})
        problems += [f"{where}.{key}: missing" for key in node.get("required", []) if key not in value]
        problems += [f"{where}.{key}: not in the schema" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                problems += _conforms(schema, properties[key], item, f"{where}.{key}")
    if kind == "array":
        for i, item in enumerate(value):
            problems += _conforms(schema, node["items"], item, f"{where}[{i}]")
    return problems


@pytest.mark.parametrize("kind,task_params", [("paint", {}), ("bubble", {"units": "deg"}), ("mouse", {})])
def test_the_real_answers_follow_the_schema(client, researcher, kind, task_params):
    from studyserver.researcher.services import studies
    from tests.annotations.test_participation import bubble, mouse, paint

    schema = _schema()
    operations = dict(_participant_operations(schema))

    def check(name, answer):
        node = operations[name]["responses"][str(answer.status_code)]["content"]["application/json"]["schema"]
        assert not _conforms(schema, node, answer.json()), (name, answer.status_code, _conforms(schema, node, answer.json()))
        return answer.json()

    study = tiny_study(researcher, task_kinds=[kind], task_params=task_params, stimuli_per_participant=2)
    start = "POST /api/v1/studies/{slug}/participants/"
    token = check(start, client.post(reverse("participant-start", args=[study.slug]), {"consent": True, "external_id": "x"}, format="json"))["token"]
    check(start, client.post(reverse("participant-start", args=[study.slug]), {"consent": True, "external_id": "x", "token": token}, format="json"))
    check(start, APIClient().post(reverse("participant-start", args=[study.slug]), {"consent": True, "external_id": "x"}, format="json"))
    nxt = "GET /api/v1/participant/{token}/next/"
    if task_params:
        check(nxt, client.get(reverse("participant-trial-next", args=[token])))  # 409 calibration_required
        check("POST /api/v1/participant/{token}/calibration/",
              client.post(reverse("participant-calibration", args=[token]), {"card_width_px": 320, "dpr": 2}, format="json"))
    practice = check("GET /api/v1/participant/{token}/practice/", client.get(reverse("participant-practice", args=[token])))
    good = {"paint": lambda w, h: paint((0, 0, w / 2, h / 2)), "bubble": lambda w, h: bubble([[w / 2, h / 2, 100], [w / 3, h / 3, 900]]),
            "mouse": lambda w, h: mouse([[w / 2, h / 2, 10 * i] for i in range(30)])}[kind]
    check("POST /api/v1/participant/{token}/practice/",
          client.post(reverse("participant-practice", args=[token]), {"payload": good(practice["width"], practice["height"])}, format="json"))
    submit = "POST /api/v1/participant/{token}/trials/{trial_id}/response/"
    trial = check(nxt, client.get(reverse("participant-trial-next", args=[token])))["trial"]
    body = {"client_uuid": str(uuid.uuid4()), "payload": good(trial["width"], trial["height"])}
    answered = check(submit, client.post(reverse("participant-response", args=[token, trial["id"]]), body, format="json"))
    assert answered["next"]["done"] is False
    check(submit, client.post(reverse("participant-response", args=[token, trial["id"]]), body, format="json"))  # a retry, 200
    studies.study_close(study=study)
    closed = check(nxt, client.get(reverse("participant-trial-next", args=[token])))
    assert closed["closed_early"] is True and closed["completion_code"] == study.completion_code
    check(submit, client.post(reverse("participant-response", args=[token, answered["next"]["trial"]["id"]]),
                              {**body, "client_uuid": str(uuid.uuid4())}, format="json"))  # 410
