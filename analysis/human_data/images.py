"""The images of an import and how data name them.

An image comes with the import (checked as a stimulus upload is: a decodable PNG, JPEG, GIF, BMP,
TIFF or WebP within the pixel and byte limits; its size is the one the platform shows, EXIF
orientation applied) or is a stimulus already in the study. Data name an image by, in this order:
1. the image file's path in the import, or its key (the path below the format's image folder,
   without the extension), 2. its file name, 3. its file name without the extension; then
4. a study stimulus's name, its sha256, or its name without the extension.
The first rule that matches decides; two images matching it is a problem (the name is ambiguous).
An image of the import whose bytes are a study stimulus's is that stimulus.
"""
from __future__ import annotations

import posixpath
from typing import Sequence

from annotations.images import ImageRejected, image_inspect, image_rendition

from .files import FileSet
from .imported import ImportedImage
from .options import ImportLimits, KnownStimulus
from .problems import ProblemList


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


def name_normal(name: str) -> str:
    return name.strip().replace("\\", "/").removeprefix("./")


class ImageIndex:
    def __init__(self, stimuli: Sequence[KnownStimulus], limits: ImportLimits, problems: ProblemList):
        self.limits, self.problems = limits, problems
        self.imported: list[ImportedImage] = []
        self._levels: list[dict[str, list[ImportedImage]]] = [{}, {}, {}]
        self._stimuli = list(stimuli)
        self._stimulus_images: dict[str, ImportedImage] = {}
        self._by_sha: dict[str, ImportedImage] = {}
        self._cache: dict[str, tuple[ImportedImage | None, str | None]] = {}
        self.named: set[int] = set()  # ids of the images some data named

    def add_file(self, files: FileSet, name: str, key: str | None = None) -> ImportedImage | None:
        """Read one image file of the import; None (and a problem) when it is not an acceptable image."""
        if len(self.imported) >= self.limits.max_images:
            self.problems.add(name, None, None, f"more than {self.limits.max_images} images; that is the limit")
            return None
        if files.size(name) > self.limits.max_image_bytes:
            self.problems.add(name, None, None, f"the image is {files.size(name)} bytes; the limit is {self.limits.max_image_bytes}")
            return None
        data = files.read(name)
        try:
            info = image_inspect(data, max_pixels=self.limits.max_image_pixels, max_bytes=self.limits.max_image_bytes)
            width, height = image_rendition(data).size
        except ImageRejected as exc:
            self.problems.add(name, None, None, str(exc))
            return None
        if info.sha256 in self._by_sha:
            self.problems.add(name, None, None, f"the same image as {self._by_sha[info.sha256].name}")
            return None
        stimulus = next((s for s in self._stimuli if s.sha256 == info.sha256), None)
        image = ImportedImage(name=name, width=width, height=height, sha256=info.sha256,
                              stimulus=stimulus.key if stimulus else None, read_bytes=files.reader(name))
        self._by_sha[info.sha256] = image
        self.imported.append(image)
        for level, alias in enumerate((name, posixpath.basename(name), _stem(name))):
            self._levels[level].setdefault(alias, []).append(image)
        if key is not None and key != name:
            self._levels[0].setdefault(key, []).append(image)
        return image

    def _stimulus_image(self, stimulus: KnownStimulus) -> ImportedImage:
        image = self._by_sha.get(stimulus.sha256) or self._stimulus_images.get(stimulus.key)
        if image is None:
            image = ImportedImage(name=stimulus.name, width=stimulus.width, height=stimulus.height,
                                  sha256=stimulus.sha256, stimulus=stimulus.key)
            self._stimulus_images[stimulus.key] = image
        return image

    def resolve(self, name: str) -> tuple[ImportedImage | None, str | None]:
        """(the image, None), or (None, why not) for a name no image or two images answer to."""
        if name not in self._cache:
            self._cache[name] = self._resolve(name_normal(name))
            if self._cache[name][0] is not None:
                self.named.add(id(self._cache[name][0]))
        return self._cache[name]

    def _resolve(self, name: str) -> tuple[ImportedImage | None, str | None]:
        if not name:
            return None, "the image name is empty"
        for level in self._levels:
            found = {id(i): i for i in level.get(name, [])}
            if len(found) == 1:
                return next(iter(found.values())), None
            if found:
                return None, f"{name!r} names {len(found)} images of the import: " + ", ".join(
                    sorted(i.name for i in found.values()))
        for match in (lambda s: s.name == name or s.sha256 == name.lower(), lambda s: _stem(s.name) == name):
            found_stimuli = [s for s in self._stimuli if match(s)]
            if len(found_stimuli) == 1:
                return self._stimulus_image(found_stimuli[0]), None
            if found_stimuli:
                return None, f"{name!r} names {len(found_stimuli)} stimuli of the study: " + ", ".join(
                    sorted(s.name for s in found_stimuli))
        if self._stimuli:
            return None, f"unknown image {name!r}: no image of the import and no stimulus of the study has this name or sha256"
        return None, f"unknown image {name!r}: no image of the import has this name, and the study has no stimuli"

    def images(self) -> list[ImportedImage]:
        """The import's images, then the study stimuli the data named (each once)."""
        seen = {id(i) for i in self.imported}
        return self.imported + [i for i in self._stimulus_images.values() if id(i) not in seen]
