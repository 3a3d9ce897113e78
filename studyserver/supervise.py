"""Run several long-lived processes together (web server, workers) and stop them all together.

Used by `manage.py demo`: Ctrl-C (SIGINT) or SIGTERM stops every child, and if one child dies the
others are stopped too, so nothing is left running in the background.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None


class Supervisor:
    def __init__(self, children: list[Child], env: dict[str, str] | None = None):
        self.children = children
        self.env = {**os.environ, **(env or {})}
        self._stopping = False

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(child.argv, env=self.env, start_new_session=True)
            print(f"  started {child.name} (pid {child.process.pid}): {' '.join(child.argv[:4])} ...", flush=True)

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        for child in self.children:
            if child.process and child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if not child.process:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        print("  stopped " + ", ".join(c.name for c in self.children), flush=True)

    @contextlib.contextmanager
    def interruptible(self):
        """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt for the whole block, and stop every child when
        it ends, however it ends. Installed *before* the children start, so a Ctrl-C at any moment
        (even while the demo is still printing its links) stops everything instead of orphaning them."""
        def interrupt(*_):
            raise KeyboardInterrupt

        # SIGINT too: a process started in the background of a script inherits SIGINT as ignored.
        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            yield self
        finally:
            # A second Ctrl-C while stopping must not cut the stop short.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            try:
                self.stop()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def wait(self) -> int:
        """Block until a child exits (1) or Ctrl-C/SIGTERM (0). Use inside `interruptible()`."""
        try:
            while True:
                dead = self.dead()
                if dead:
                    print(f"  {dead[0].name} exited with code {dead[0].process.returncode}; stopping the rest", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
