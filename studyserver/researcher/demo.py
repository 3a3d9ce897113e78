"""The demo study: real photos shipped inside scikit-image, labelled with their ImageNet classes."""
from __future__ import annotations

import io
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image

from annotations.models import Study

from .services import studies

DEMO_SLUG = "demo"
DEMO_USERNAME = "researcher"

# (file inside skimage/data, name, ImageNet class index). Predictions of EfficientNet-Lite0 on the
# whole photo resized to 224: chelsea 285 (p 0.80), coffee 967 (0.86), motorcycle_left 665 (0.47),
# rocket 657 (0.26), camera 872 (0.94); horse (a silhouette) and astronaut are hard cases on purpose.
DEMO_PHOTOS = [
    ("chelsea.png", "chelsea (cat)", 285),
    ("coffee.png", "coffee", 967),
    ("motorcycle_left.png", "motorcycle", 665),
    ("rocket.jpg", "rocket", 657),
    ("camera.png", "cameraman", 872),
    ("horse.png", "horse (silhouette)", 339),
    ("astronaut.png", "astronaut", 834),
]


def demo_photo_bytes(filename: str) -> bytes:
    """The photo file exactly as scikit-image ships it (no download: these files are in the wheel)."""
    import skimage.data

    return (Path(skimage.data.__file__).parent / filename).read_bytes()


def demo_photo(filename: str) -> Image.Image:
    return Image.open(io.BytesIO(demo_photo_bytes(filename)))


@transaction.atomic
def demo_researcher(password: str | None = None) -> tuple[object, str]:
    """The demo researcher account, with a fresh password (returned so it can be printed)."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True})
    password = password or secrets.token_urlsafe(9)
    user.set_password(password)
    user.is_staff = user.is_superuser = True
    user.save()
    return user, password


@transaction.atomic
def demo_study(owner, *, participants_per_stimulus: int = 5, stimuli_per_participant: int = 4) -> Study:
    """The demo paint study with its photos, launched (its Grad-CAM jobs queued). Idempotent."""
    study = Study.objects.filter(slug=DEMO_SLUG).first()
    if study is None:
        study = studies.study_create(
            owner=owner,
            slug=DEMO_SLUG,
            title="What makes it recognisable? (demo)",
            task_kinds=["paint"],
            participants_per_stimulus=participants_per_stimulus,
            stimuli_per_participant=stimuli_per_participant,
        )
        for filename, name, class_index in DEMO_PHOTOS:
            studies.stimulus_create(
                study=study, data=demo_photo_bytes(filename), filename=filename, name=name, class_index=class_index
            )
    if study.status == Study.Status.DRAFT:
        study = studies.study_launch(study=study)
    return study
