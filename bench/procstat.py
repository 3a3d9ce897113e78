"""CPU seconds and resident memory of the benches' processes, read from /proc.

CPU is the on-CPU time the scheduler accounted to every thread of a process
(`/proc/<pid>/task/<tid>/schedstat`, nanoseconds; user + system together), so a request of 1.5 ms
is measured to the microsecond instead of /proc/<pid>/stat's 10 ms ticks. Where schedstat is
missing, it falls back to /proc/<pid>/stat (utime + stime, whole process, tick resolution).

PostgreSQL is counted per database: only the backends whose process title names the bench's own
database (`postgres: ... <user> <database> <client> <state>`), so other databases on the same server
(other test runs on a shared machine) are not charged to the bench. The server's shared processes
(WAL writer, checkpointer) are not counted.

`CpuMeter` samples groups of processes in a background thread and keeps, for every pid it saw, the
CPU at its first and last sample: a process that starts during the run counts from zero, one that
exits keeps what it had at its last sample (at most one interval is lost).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> float:
    """On-CPU seconds of every live thread of `pid`. Raises ProcessLookupError if it is gone."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    found = False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
                total += int(handle.read().split()[0])
                found = True
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between listdir and open
    if not found:
        return stat_cpu_s(pid)
    return total / 1e9


def stat_cpu_s(pid: int) -> float:
    """utime + stime of `pid` (all its threads, ended ones included), seconds, at tick resolution."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    out.extend(int(x) for x in handle.read().split())
            except FileNotFoundError:
                continue
    except FileNotFoundError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children(current))
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def postgres_backends(database: str) -> list[int]:
    """Pids of the PostgreSQL backends connected to `database` (by their process title)."""
    marker = f" {database} "
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            title = cmdline(int(entry))
            if title.startswith("postgres:") and marker in title:
                out.append(int(entry))
    return out


def rss_mib(pid: int) -> float:
    """Resident set size of `pid`, MiB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def maps_library(pid: int, name: str) -> bool:
    """Whether a shared library whose path contains `name` (e.g. "libtorch") is mapped in `pid`."""
    try:
        with open(f"/proc/{pid}/maps") as handle:
            return any(name in line for line in handle)
    except (FileNotFoundError, PermissionError):
        return False


def group_cpu_s(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += thread_cpu_s(pid)
        except ProcessLookupError:
            pass
    return total


class CpuMeter:
    """CPU seconds of named groups of processes since `start()`, sampled every `interval` s.

    groups: name -> a function returning the group's pids now (re-evaluated at every sample, so
    workers, pool children and database backends that appear later are counted).
    `series` holds (monotonic time, {group: cumulative CPU s}) for every sample, for windows."""

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]], interval: float = 0.5):
        self.groups, self.interval = groups, interval
        self.first: dict[str, dict[int, float]] = {g: {} for g in groups}
        self.last: dict[str, dict[int, float]] = {g: {} for g in groups}
        self.series: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _sample(self, initial: bool) -> None:
        now = {}
        for name, pids_of in self.groups.items():
            try:
                pids = list(pids_of())
            except (ProcessLookupError, FileNotFoundError):
                pids = []
            for pid in pids:
                try:
                    cpu = thread_cpu_s(pid)
                except ProcessLookupError:
                    continue
                # A process first seen after start() was born during the run: count it from zero.
                self.first[name].setdefault(pid, cpu if initial else 0.0)
                self.last[name][pid] = cpu
            now[name] = sum(self.last[name][p] - self.first[name][p] for p in self.last[name])
        with self._lock:
            self.series.append((time.monotonic(), now))

    def start(self) -> CpuMeter:
        self._sample(initial=True)

        def loop():
            while not self._stop.wait(self.interval):
                self._sample(initial=False)

        self._thread = threading.Thread(target=loop, daemon=True, name="cpu-meter")
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(initial=False)
        return self.totals()

    def totals(self) -> dict[str, float]:
        with self._lock:
            return dict(self.series[-1][1])

    def window(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds per group between the samples nearest to monotonic times t0 and t1."""
        with self._lock:
            series = list(self.series)

        def at(t):
            return min(series, key=lambda s: abs(s[0] - t))

        (a_t, a), (b_t, b) = at(t0), at(t1)
        return {name: b[name] - a[name] for name in b} | {"_seconds": b_t - a_t}
