"""The paint answers the load benches send, as the participant page records them.

`paint_payload(trial)`: a fresh raw payload for one trial (2-3 zig-zag strokes of a few hundred
points in stimulus px, with timestamps), as bench/load_users.py (locust) sends it.
`PaintBodies`: the same, pre-generated and pre-encoded as JSON (a pool per stimulus size), for a
load generator whose own CPU per request must stay small (bench/loadgen.py): a submit's body is
then one string format with its client UUID and duration. The server sees the same kind of answer
either way (it does not know two participants drew the same strokes).

Imports nothing outside the standard library (locust patches it; the benches load this without it).
"""
from __future__ import annotations

import json
import random


def paint_strokes(width: int, height: int, rng: random.Random | None = None) -> list[dict]:
    """Two or three zig-zag strokes over a random part of the image, sampled as pointer events
    arrive (~60 Hz, a few px apart), radius one of the page's brushes: a few hundred points."""
    rng = rng or random.Random()
    strokes, t = [], 0
    for _ in range(rng.randint(2, 3)):
        radius = round(rng.choice([6, 14, 28]) * width / 500, 2)
        x0, y0 = rng.uniform(0.05, 0.5) * width, rng.uniform(0.05, 0.5) * height
        w, h = rng.uniform(0.15, 0.4) * width, rng.uniform(0.15, 0.4) * height
        points, y, forward = [], y0, True
        while y <= y0 + h:
            xs = [x0 + w * i / 12 for i in range(13)]
            for x in xs if forward else xs[::-1]:
                points.append([round(x + rng.uniform(-1, 1), 2), round(y + rng.uniform(-1, 1), 2), t])
                t += 16
            y += radius
            forward = not forward
        strokes.append({"radius": radius, "erase": False, "points": points})
        t += rng.randint(200, 800)
    return strokes


def paint_payload(trial: dict, user_agent: str = "locust-participant/1.0", rng: random.Random | None = None) -> dict:
    """The raw paint payload for `trial` (its display size, stimulus size), as the page posts it."""
    return {"display": {"width": trial["display"]["width"], "height": trial["display"]["height"], "dpr": 1,
                        "viewport": [1280, 800]},
            "pointer_types": ["mouse"], "user_agent": user_agent,
            "strokes": paint_strokes(trial["width"], trial["height"], rng), "time_limit_ms": None}


class PaintBodies:
    """Pre-encoded submit bodies: `pool` payloads per (display, stimulus) size, made on first use.

    `body(trial, client_uuid, duration_ms)` -> the request body (bytes), the same JSON the page sends
    ({"client_uuid", "payload", "duration_ms"}), the payload drawn at random from the pool."""

    def __init__(self, pool: int = 64, seed: int = 0, user_agent: str = "loadgen-participant/1.0"):
        self.pool, self.rng, self.user_agent = pool, random.Random(seed), user_agent
        self._encoded: dict[tuple, list[str]] = {}

    def body(self, trial: dict, client_uuid: str, duration_ms: int) -> bytes:
        key = (trial["display"]["width"], trial["display"]["height"], trial["width"], trial["height"])
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = self._encoded[key] = [json.dumps(paint_payload(trial, self.user_agent, self.rng), separators=(",", ":"))
                                            for _ in range(self.pool)]
        payload = encoded[self.rng.randrange(len(encoded))]
        return f'{{"client_uuid":"{client_uuid}","duration_ms":{int(duration_ms)},"payload":{payload}}}'.encode()
