"""What a study asks the model side for (its `explain_config`), checked against the catalogues, and
the keys explanation jobs are found by. Torch-free: the web process validates designs with it.

A study's explain_config is a list of {"model": key, "method": key, "params": {...}}; each entry is
resolved to (model key, weights hash, method key, parameters with defaults filled in). A job is keyed
by (image sha256, model key, weights hash, method key, params hash, target).
"""
from __future__ import annotations

import hashlib
import json

from annotations.models import Stimulus
from studyserver.errors import InvalidInput

from .method_catalogue import InvalidParams, UnknownMethod, method_options, method_spec_get
from .model_catalogue import DEFAULT_MODEL, ModelUnavailable, UnknownModel, model_options, model_weights_hash

CONFIG_FIELDS = {"model", "method", "params"}
DEFAULT_EXPLAIN_CONFIG = [{"model": DEFAULT_MODEL, "method": "gradcam", "params": {}}]
CONFIG_ERRORS = (InvalidParams, UnknownMethod, UnknownModel, ModelUnavailable)


def job_target(stimulus: Stimulus) -> int:
    """The class a stimulus' explanation jobs explain: its label, or -1 (the model's top prediction)."""
    return stimulus.class_index if stimulus.class_index is not None else -1


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def explain_config_resolve(config: list[dict]) -> list[tuple[str, str, str, dict]]:
    """[(model key, weights hash, method key, resolved params)] from a study's explain_config.
    Raises InvalidInput naming the unknown model, method or parameter and the valid ones."""
    resolved = []
    for i, entry in enumerate(config):
        if not isinstance(entry, dict):
            raise InvalidInput(f"explain_config[{i}] must be an object {{model, method, params}}")
        unknown = sorted(set(entry) - CONFIG_FIELDS)
        if unknown:
            raise InvalidInput(f"explain_config[{i}]: unknown field(s) {', '.join(unknown)}; valid: model, method, params")
        try:
            model_key = entry.get("model", DEFAULT_MODEL)
            weights = model_weights_hash(model_key)
            spec = method_spec_get(entry["method"])
            params = spec.params_resolve(entry.get("params") or {})
        except KeyError:
            raise InvalidInput(f"explain_config[{i}] needs a 'method'") from None
        except CONFIG_ERRORS as exc:
            raise InvalidInput(f"explain_config[{i}]: {exc}") from None
        resolved.append((model_key, weights, spec.key, params))
    return resolved


def explain_config_clean(config) -> list[dict]:
    """The config, checked against the catalogues (InvalidInput names the problem under the field
    `explain_config`)."""
    if not isinstance(config, list) or not all(isinstance(entry, dict) for entry in config):
        raise InvalidInput("explain_config must be a list of {model, method, params}", fields={"explain_config": ["not a list"]})
    try:
        explain_config_resolve(config)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fields={"explain_config": [exc.message]}) from None
    return config


def explain_options() -> dict:
    """What a study may choose, as the options API and the design form's picker show it: the model an
    entry without "model" uses, every registered model (with why this server cannot run it, where it cannot) and every method (label,
    version, paper, parameters with defaults and docs), in the catalogues' order."""
    return {"default_model": DEFAULT_MODEL, "models": model_options(), "methods": method_options()}
