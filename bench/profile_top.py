"""Top frames of a py-spy profile (raw / collapsed stacks), self and cumulative.

    .venv/bin/python bench/profile_top.py PROFILE.raw [--rate 250] [--requests N] [--top 15]
                                          [--only FRAME] [--exclude FRAME]

py-spy's raw format is one line per distinct stack: `frame;frame;...;leaf COUNT`, a frame being
`qualname (file:line)` (recorded with `--function`, the line is the function's first). Self time of
a frame: the samples where it is the leaf (running its own code, or C code it called); cumulative:
the samples where it is anywhere on the stack (counted once per sample). Both are printed as a share
of all samples (the cumulative list leaves out the server's and Celery's own loops and any frame on
95% of the stacks or more: the middleware chain and view wrappers around every request) and, given
the sampling rate and the number of requests (or responses) the profile covers, as milliseconds of
CPU per request (scaled to the CPU measured from /proc when the caller gives the ratio). Also self time by package (the first part of the file's
path: django, rest_framework, psycopg, annotations, numpy, ... and the standard library).

`--only FRAME` keeps the samples with a frame containing FRAME on their stack (e.g. a Celery task's
function), `--exclude FRAME` drops them.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
STDLIB = {"threading", "socket", "selectors", "ssl", "json", "re", "logging", "collections", "functools", "inspect",
          "typing", "enum", "uuid", "datetime", "decimal", "copy", "io", "os", "posixpath", "abc", "contextlib",
          "email", "http", "urllib", "hashlib", "hmac", "base64", "importlib", "warnings", "weakref", "traceback",
          "zlib", "gzip", "struct", "tempfile", "shutil", "pathlib", "queue", "random", "string", "textwrap",
          "dataclasses", "operator", "itertools", "types", "numbers", "codecs", "locale", "signal", "select",
          "multiprocessing", "concurrent", "asyncio", "zoneinfo", "ipaddress", "mimetypes", "glob", "fnmatch",
          "bisect", "heapq", "pickle", "copyreg", "linecache", "tokenize", "ast", "dis", "sre_parse", "sre_compile"}


def read_raw(path: Path) -> list[tuple[list[str], float]]:
    """(stack from the root to the leaf, samples) for every line of a py-spy raw file. Callers may
    weight the counts (floats) before `top`/`report`, e.g. to scale each process to its CPU."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def package(frame: str) -> str:
    match = FRAME.match(frame)
    path = match.group("file") if match else frame
    if path.startswith("<"):
        return "python (frozen/builtin)"
    first = path.split("/")[0].removesuffix(".py")
    return "python stdlib" if first in STDLIB else first


def short(frame: str, width: int = 96) -> str:
    return frame if len(frame) <= width else frame[: width - 1] + "…"


def select(stacks, only: str | None = None, exclude: str | None = None):
    return [(s, n) for s, n in stacks
            if (only is None or any(only in f for f in s)) and (exclude is None or not any(exclude in f for f in s))]


# Frames on (nearly) every stack that say nothing about the work: the server's and the worker's own
# loops, threads, the process header py-spy adds with --subprocesses. Left out of the cumulative list.
PLUMBING = ("gunicorn/", "click/", "billiard/", "celery/", "kombu/", "threading.py", "concurrent/", "<module>")


def plumbing(frame: str) -> bool:
    return frame.startswith(("process ", "<module>")) or any(f"({p}" in frame for p in PLUMBING)


def top(stacks, n: int = 15) -> dict:
    total = sum(c for _, c in stacks)
    self_, cumulative, packages = Counter(), Counter(), Counter()
    for stack, count in stacks:
        self_[stack[-1]] += count
        packages[package(stack[-1])] += count
        for frame in set(stack):
            if not plumbing(frame):
                cumulative[frame] += count
    # A frame on (nearly) every stack (the middleware chain, the view wrappers) says nothing: left out.
    cumulative = Counter({f: c for f, c in cumulative.items() if c < 0.95 * total})
    return {"samples": total, "self": self_.most_common(n), "cumulative": cumulative.most_common(n),
            "packages": packages.most_common(n)}


def report(stacks, *, rate: float, requests: int, title: str, n: int = 15, unit: str = "request",
           scale: float = 1.0) -> str:
    """Markdown-ish text: the top frames self and cumulative, and self time by package.

    scale: measured CPU seconds / sampled seconds of the process the profile is of (1: take the
    samples as CPU). Samples count wall time a thread was runnable; on a busy machine that is more
    than its CPU, so the benches scale the shares to the CPU they measured from /proc."""
    t = top(stacks, n)
    total = max(t["samples"], 1)
    per = 1000 / rate / max(requests, 1) * scale  # ms of CPU per request for one sample
    lines = [f"### {title}", f"{t['samples']:.0f} samples = {t['samples'] / rate:.2f} s sampled"
             + (f" x {scale:.2f} (measured CPU / sampled)" if scale != 1.0 else "")
             + f" = {t['samples'] * per:.2f} ms CPU per {unit} ({requests} {unit}s)", ""]
    for kind in ("self", "cumulative"):
        lines += [f"{kind:>10}  ms/{unit[:4]}  frame", ""]
        for frame, count in t[kind]:
            lines.append(f"{100 * count / total:9.1f}%  {count * per:8.2f}  {short(frame)}")
        lines.append("")
    lines.append("self time by package: " + ", ".join(f"{name} {100 * c / total:.0f}%" for name, c in t["packages"]))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--rate", type=float, default=100, help="py-spy's --rate for this profile")
    parser.add_argument("--requests", type=int, default=1, help="requests (or responses) the profile covers")
    parser.add_argument("--unit", default="request")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--scale", type=float, default=1.0, help="measured CPU s / sampled s of the process")
    parser.add_argument("--only")
    parser.add_argument("--exclude")
    args = parser.parse_args()
    stacks = select(read_raw(args.raw), args.only, args.exclude)
    title = f"{args.raw.name}" + (f", only {args.only}" if args.only else "") + (f", without {args.exclude}" if args.exclude else "")
    print(report(stacks, rate=args.rate, requests=args.requests, title=title, n=args.top, unit=args.unit, scale=args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
