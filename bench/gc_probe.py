"""A gunicorn config file for the benches: how much of each request is Python's garbage collector.

    gunicorn ... -c bench/gc_probe.py      (with GC_PROBE_DIR set: one file per worker there)

A collection runs inside whatever request allocated the object that crossed the threshold, and a
full (generation 2) collection walks every tracked object of the process (hundreds of thousands
once torch and Django are imported), so its cost lands on a random request. This records, for every
request a worker served, the CPU the collector took during it (the collecting thread's CPU between
gc.callbacks' start and stop) and the collections by generation, then the worker's totals so far,
one line per request: `path<TAB>gc_ms<TAB>gen0<TAB>gen1<TAB>gen2<TAB>total_gc_ms<TAB>total_gen2`.
The per-request figures hold for one thread per worker; with several, read only the totals.
It changes nothing the application does.
"""
import gc
import os
import time

_state = {"start": 0.0, "ms": 0.0, "gens": [0, 0, 0], "total_ms": 0.0, "total_gen2": 0, "out": None}


def _callback(phase, info):
    if phase == "start":
        _state["start"] = time.thread_time()
    else:
        ms = 1000 * (time.thread_time() - _state["start"])
        _state["ms"] += ms
        _state["total_ms"] += ms
        _state["gens"][info["generation"]] += 1
        _state["total_gen2"] += info["generation"] == 2


def post_fork(server, worker):
    folder = os.environ.get("GC_PROBE_DIR")
    if folder:
        _state["out"] = open(os.path.join(folder, f"gc-{os.getpid()}.tsv"), "a", buffering=1)
        gc.callbacks.append(_callback)


def pre_request(worker, req):
    _state["ms"], _state["gens"] = 0.0, [0, 0, 0]


def post_request(worker, req, environ, resp):
    if _state["out"] is not None:
        g = _state["gens"]
        _state["out"].write(f"{req.path}\t{_state['ms']:.3f}\t{g[0]}\t{g[1]}\t{g[2]}\t{_state['total_ms']:.3f}\t{_state['total_gen2']}\n")
