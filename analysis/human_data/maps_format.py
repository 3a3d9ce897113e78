"""The `maps` format: maps per image, and optionally per participant (ClickMe / TurkEyes style
click or mask maps, gaze density maps), as PNG (or another image format), .npy or .mat.

Folders are recognised by name, case-insensitive, at any depth; a map's key is its path below its
folder without the extension, and names its image (`images.py`):
- `participants/<participant>/<key>.<ext>`: that participant's map of the image. Each is
  normalised to sum 1 so each participant weighs equally (maps_normalise="sum", default; an
  all-zero map stays zero), or kept as given (maps_normalise="none", e.g. binary masks averaged
  as the platform averages paint masks).
- `maps/<key>.<ext>`: a density map of the image as a whole (normalised to sum 1). With
  participant maps it is kept as given data; without, it is the human map (no ceiling exists).
- `fixations/<key>.<ext>`: a binary map of the fixated pixels (> 0.5), for NSS and AUC-Judd.
- images: `stimuli/` or `images/` (key: the path below it), or image files anywhere else outside
  those folders (key: the path). Optional when the maps name stimuli already in the study.
"""
from __future__ import annotations

from .files import IMAGE_EXTENSIONS, FileSet, extension, ignored_note, key_of, role_split
from .images import ImageIndex
from .map_files import MAP_EXTENSIONS, map_source
from .options import ImportLimits, ImportOptions
from .problems import ProblemList

ROLES = {"stimuli": "stimuli", "images": "stimuli", "maps": "density", "fixations": "binary",
         "participants": "participant"}
MAX_PARTICIPANT_CHARS = 200


def maps_read(files: FileSet, options: ImportOptions, index: ImageIndex, limits: ImportLimits,
              problems: ProblemList, notes: list[str]) -> None:
    entries, ignored = [], []
    for name in files.names:
        split = role_split(name, ROLES)
        ext = extension(name)
        if split is None and ext in IMAGE_EXTENSIONS:
            index.add_file(files, name, key=key_of([name]))
        elif split and split[0] == "stimuli" and ext in IMAGE_EXTENSIONS:
            index.add_file(files, name, key=key_of(split[1]))
        elif split and split[0] in ("density", "binary") and ext in MAP_EXTENSIONS:
            entries.append((name, split[0], None, key_of(split[1])))
        elif split and split[0] == "participant" and ext in MAP_EXTENSIONS and len(split[1]) >= 2:
            entries.append((name, "participant", split[1][0], key_of(split[1][1:])))
        else:
            ignored.append(name)
    for name, role, participant, key in entries:
        image, reason = index.resolve(key)
        if image is None:
            problems.add(name, None, None, reason or "unknown image")
            continue
        if participant is not None and len(participant) > MAX_PARTICIPANT_CHARS:
            problems.add(name, None, "participant", f"the participant folder name is over {MAX_PARTICIPANT_CHARS} characters")
            continue
        if role == "participant" and participant in image.participant_maps:
            problems.add(name, None, None, f"a second map of participant {participant!r} for {image.name}; the first "
                         f"is {image.participant_maps[participant].file}")
            continue
        attribute = {"density": "density", "binary": "fixation_map"}.get(role)
        if attribute and getattr(image, attribute) is not None:
            problems.add(name, None, None, f"a second {role} map for {image.name}; the first is "
                         f"{getattr(image, attribute).file}")
            continue
        source = map_source(files, name, limits, image, role, problems, normalise=options.maps_normalise)
        if source is None:
            continue
        if role == "participant":
            image.participant_maps[participant] = source
        else:
            setattr(image, attribute, source)
    if note := ignored_note(ignored, "not an image, nor a map in a maps, fixations or participants/<participant> folder"):
        notes.append(note)
