"""pysaliency 0.2.22 as a reference implementation, importable on this machine (tests and bench only).

Two shims, neither touching the code under test:
- numpy 2.4 removed `np.trapz`, which pysaliency's ROC calls: alias it to `np.trapezoid`.
- setuptools >= 81 no longer ships `pkg_resources`, which pysaliency imports at module level for its
  MATLAB model wrappers (never used here): a stand-in module whose functions refuse to be called.
"""
from __future__ import annotations

import sys
import types

import numpy as np


def _refuse(*_args, **_kwargs):
    raise RuntimeError("pkg_resources stand-in: not available in this environment")


def load():
    """The `pysaliency` module (metrics.CC, SIM, NSS, MIT_KLDiv; roc.general_roc)."""
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            stand_in = types.ModuleType("pkg_resources")
            stand_in.resource_string = stand_in.resource_listdir = stand_in.resource_filename = _refuse
            sys.modules["pkg_resources"] = stand_in
    import pysaliency
    import pysaliency.metrics
    import pysaliency.roc

    return pysaliency
