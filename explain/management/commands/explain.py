"""`python manage.py explain IMAGE --model efficientnet_lite0 --method gradcam [--target N]
[--param key=value ...] --out map.npy`: explain one image file on this machine.

Writes the raw map (float32, the image's height x width, signed where the method is signed) and
prints one JSON line: target, predicted class, probability, seconds (and the model, method, params).
"""
import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from PIL import Image, ImageOps, UnidentifiedImageError

from ...methods import InvalidParams, UnknownMethod
from ...pipeline import InvalidTarget, explain_image
from ...zoo import DEFAULT_MODEL, ModelUnavailable, UnknownModel, model_load


def param_parse(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise CommandError(f"--param {text!r} must be key=value")
    return name.strip(), value.strip()


class Command(BaseCommand):
    help = "Explain one image with one method and model; write the raw map as .npy, print a JSON line."

    def add_arguments(self, parser):
        parser.add_argument("image", help="image file (any format Pillow reads: grey, CMYK, palette, alpha, 16-bit)")
        parser.add_argument("--model", default=DEFAULT_MODEL)
        parser.add_argument("--method", default="gradcam")
        parser.add_argument("--target", type=int, default=None, help="class index (default: the top prediction)")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", required=True, help="where to write the raw map (.npy)")

    def handle(self, *args, **options):
        params = dict(param_parse(text) for text in options["param"])
        try:
            with Image.open(options["image"]) as opened:
                image = ImageOps.exif_transpose(opened)
                image.load()
        except (OSError, UnidentifiedImageError) as exc:
            raise CommandError(f"cannot read image {options['image']}: {exc}") from None
        try:
            model = model_load(options["model"])
            e = explain_image(model, image, options["method"], target=options["target"], params=params, seed=options["seed"])
        except (UnknownModel, ModelUnavailable, UnknownMethod, InvalidParams, InvalidTarget) as exc:
            raise CommandError(str(exc)) from None
        out = Path(options["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, e.raw.astype(np.float32), allow_pickle=False)
        line = {
            "target": e.target,
            "target_name": model.class_names[e.target],
            "predicted": e.predicted,
            "predicted_name": model.class_names[e.predicted],
            "probability": round(e.predicted_probability, 6),
            "target_probability": round(e.target_probability, 6),
            "seconds": round(e.seconds, 4),
            "model": e.model,
            "weights_hash": e.weights_hash,
            "method": e.method,
            "params": e.params,
            "device": e.device,
            "out": str(out),
        }
        self.stdout.write(json.dumps(line))
