"""The explanation methods a study may ask for, as plain data: keys, labels, versions, parameters
with their defaults, types, ranges and documentation. No torch, no Django.

The web process (the design form, the researcher API, job creation) reads only this module; the
torch implementations in `explain/methods/` register against it (each implementation names its
spec, and a test checks that every spec has exactly one implementation with the same key).
`MethodSpec.params_resolve` is the one place a study's method parameters are checked and completed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


class InvalidParams(ValueError):
    """A parameter is unknown or has a bad value; the message lists the valid ones."""


class UnknownMethod(ValueError):
    """The method key is not registered; the message lists the valid keys."""


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidParams(message)


@dataclass(frozen=True)
class MethodSpec:
    """One method. `defaults`: name -> default; the default's type is the parameter's type (None
    means "any"). `optional_types`: parameters whose default None means "the method chooses" and
    that take a value of the given type when set (IG's steps). `check` raises InvalidParams on values
    out of range. `signed`: the raw map keeps signs (the comparison map never does)."""

    key: str
    label: str
    version: str
    signed: bool
    paper: str
    defaults: dict[str, Any] = field(default_factory=dict)
    optional_types: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], None] = lambda params: None

    def params_resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in, unknown names refused, values coerced to the default's type, ranges checked."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "(none)"
            raise InvalidParams(f"unknown parameter(s) {', '.join(unknown)} for {self.key}; valid: {valid}")
        resolved = dict(self.defaults)
        for name, value in params.items():
            if name in self.optional_types:
                resolved[name] = None if value is None else _coerce(self.key, name, value, self.optional_types[name])
            else:
                resolved[name] = _coerce(self.key, name, value, self.defaults[name])
        self.check(resolved)
        return resolved

    def as_option(self) -> dict[str, Any]:
        """What the options API and the design form's picker show."""
        return {"key": self.key, "label": self.label, "version": self.version, "signed": self.signed,
                "paper": self.paper, "defaults": dict(self.defaults), "docs": dict(self.docs)}


def _coerce(method: str, name: str, value: Any, default: Any) -> Any:
    if default is None:
        return value
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            result = float(value)
            if result != result or result in (float("inf"), float("-inf")):
                raise ValueError(value)
            return result
        return kind(value)
    except (TypeError, ValueError):
        raise InvalidParams(f"{method}: parameter {name}={value!r} must be of type {kind.__name__}") from None


# --- constants the specs and their implementations share ------------------------------------------

UPSAMPLE_MODES = ("bilinear", "nearest", "bicubic")
QUADRATURES = ("gausslegendre", "riemann_left", "riemann_middle", "riemann_right", "riemann_trapezoid")
# Integrated Gradients' default schedule: STEPS_FIRST points, doubled while the completeness gap
# exceeds COMPLETENESS_BOUND, at most STEPS_MAX.
STEPS_FIRST, STEPS_MAX, COMPLETENESS_BOUND = 50, 400, 0.02
BATCH_SIZE_DOC = "{what} per forward pass; 0 = device default (4 on CPU, 64 on CUDA)"


def _ig_check(p: dict) -> None:
    _need(p["steps"] is None or 1 <= p["steps"] <= 10_000, "integrated_gradients: steps must be null (adaptive) or between 1 and 10000")
    _need(p["quadrature"] in QUADRATURES, f"integrated_gradients: quadrature must be one of {', '.join(QUADRATURES)}")


def _smoothgrad_check(p: dict) -> None:
    _need(1 <= p["n"] <= 100_000, "smoothgrad: n must be between 1 and 100000")
    _need(p["noise"] >= 0, "smoothgrad: noise must be >= 0")


SPECS: tuple[MethodSpec, ...] = (
    MethodSpec(
        key="gradient", label="Gradient (vanilla saliency)", version="1", signed=True,
        paper="Simonyan, Vedaldi & Zisserman 2014, Deep Inside Convolutional Networks",
    ),
    MethodSpec(
        key="smoothgrad", label="SmoothGrad", version="1", signed=False,
        paper="Smilkov et al. 2017, SmoothGrad: removing noise by adding noise",
        defaults={"n": 50, "noise": 0.15, "seed": 0},
        docs={
            "n": "number of noisy copies (Smilkov 2017: 50)",
            "noise": "noise sigma as a fraction of the image's value range x.max - x.min (Smilkov 2017: 0.15)",
            "seed": "seed of the noise generator",
        },
        check=_smoothgrad_check,
    ),
    MethodSpec(
        key="integrated_gradients", label="Integrated Gradients", version="2", signed=True,
        paper="Sundararajan, Taly & Yan 2017, Axiomatic Attribution for Deep Networks",
        defaults={"steps": None, "baseline": 0.0, "quadrature": "gausslegendre"},
        optional_types={"steps": 0},
        docs={
            "steps": (f"points on the straight path from the baseline to the image; null (default): {STEPS_FIRST}, doubled "
                      f"until the completeness gap is within {COMPLETENESS_BOUND:.0%}, at most {STEPS_MAX}; a number: "
                      "exactly that many (Sundararajan 2017: 50). Each map records steps_used and completeness_gap"),
            "baseline": "constant baseline value in the model's normalised input space (0 = the mean colour)",
            "quadrature": "integration rule: " + ", ".join(QUADRATURES) + " (Captum's default: gausslegendre)",
        },
        check=_ig_check,
    ),
    MethodSpec(
        key="guided_backprop", label="Guided Backprop", version="1", signed=True,
        paper="Springenberg et al. 2015, Striving for Simplicity: The All Convolutional Net",
    ),
    MethodSpec(
        key="gradcam", label="Grad-CAM", version="1", signed=True,
        paper="Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks",
        defaults={"layer": "features"},
        docs={"layer": "dotted name of the layer whose activations and gradients are used"},
    ),
    MethodSpec(
        key="guided_gradcam", label="Guided Grad-CAM", version="1", signed=True,
        paper="Selvaraju et al. 2017 (guided backprop x Grad-CAM)",
        defaults={"layer": "features", "upsample": "bilinear"},
        docs={
            "layer": "dotted name of the Grad-CAM layer (default: the last conv map)",
            "upsample": "how the CAM is resized to the input: " + ", ".join(UPSAMPLE_MODES) + " (paper: bilinear)",
        },
        check=lambda p: _need(p["upsample"] in UPSAMPLE_MODES, f"guided_gradcam: upsample must be one of {', '.join(UPSAMPLE_MODES)}"),
    ),
    MethodSpec(
        key="xrai", label="XRAI", version="1", signed=True,
        paper="Kapishnikov et al. 2019, XRAI: Better Attributions Through Regions",
        defaults={"steps": 100, "sigma": 0.8, "min_size": 150, "dilation": 5, "min_pixel_diff": 50, "batch_size": 0},
        docs={
            "steps": "IG points per baseline (black = min(x), white = max(x)), both path ends included (PAIR: 100)",
            "sigma": "Felzenszwalb Gaussian pre-smoothing (PAIR: 0.8); scales are fixed at 50,100,150,250,500,1200",
            "min_size": "Felzenszwalb minimum segment size, pixels at 224 x 224 (PAIR: 150)",
            "dilation": "radius of the disk each segment is dilated by (PAIR: 5; 0 = none)",
            "min_pixel_diff": "a region is dropped once it would add fewer new pixels than this (PAIR: 50)",
            "batch_size": "path points per forward+backward pass; 0 = device default (4 on CPU, 64 on CUDA)",
        },
        check=lambda p: _need(p["steps"] >= 1 and p["min_pixel_diff"] >= 1 and p["dilation"] >= 0 and p["batch_size"] >= 0,
                              "xrai: need steps >= 1, min_pixel_diff >= 1, dilation >= 0, batch_size >= 0"),
    ),
    MethodSpec(
        key="rise", label="RISE", version="1", signed=False,
        paper="Petsiuk, Das & Saenko 2018, RISE: Randomized Input Sampling for Explanation",
        defaults={"n_masks": 4000, "s": 7, "p1": 0.5, "seed": 0, "batch_size": 0},
        docs={
            "n_masks": "number of random masks N (paper and eclique/RISE: 4000 for ResNet-50)",
            "s": "grid cells per side before upsampling (paper: 7)",
            "p1": "probability that a cell is kept (paper: 0.5)",
            "seed": "seed of the mask generator",
            "batch_size": BATCH_SIZE_DOC.format(what="masked inputs"),
        },
        check=lambda p: _need(p["n_masks"] >= 1 and p["s"] >= 1 and 0 < p["p1"] <= 1 and p["batch_size"] >= 0,
                              "rise: need n_masks >= 1, s >= 1, 0 < p1 <= 1, batch_size >= 0"),
    ),
    MethodSpec(
        key="lime", label="LIME", version="1", signed=True,
        paper="Ribeiro, Singh & Guestrin 2016, \"Why Should I Trust You?\"",
        defaults={"samples": 1000, "kernel_size": 4.0, "max_dist": 200.0, "ratio": 0.2, "kernel_width": 0.25,
                  "seed": 0, "quickshift_seed": 42, "batch_size": 0},
        docs={
            "samples": "perturbed samples (lime's num_samples; its default 1000)",
            "kernel_size": "quickshift Gaussian kernel width (lime: 4)",
            "max_dist": "quickshift cut-off distance (lime: 200)",
            "ratio": "quickshift colour vs space balance (lime: 0.2)",
            "kernel_width": "width of the exponential kernel on cosine distance (lime: 0.25)",
            "seed": "seed of the sample draws (lime's random_state)",
            "quickshift_seed": "rng of quickshift's tie-breaking noise (what lime's quickshift gets: 42)",
            "batch_size": BATCH_SIZE_DOC.format(what="samples"),
        },
        check=lambda p: _need(p["samples"] >= 2 and p["kernel_width"] > 0 and p["kernel_size"] > 0 and p["batch_size"] >= 0,
                              "lime: need samples >= 2, kernel_width > 0, kernel_size > 0, batch_size >= 0"),
    ),
    MethodSpec(
        key="fem", label="FEM", version="1", signed=False,
        paper="Fuad et al. 2020, Features Understanding in 3D CNNs for Actions Recognition in Video (FEM)",
        defaults={"layer": "features", "k": 2.0},
        docs={
            "layer": "dotted name of the last conv block whose activations are thresholded",
            "k": "threshold in standard deviations above each channel's mean (paper: 2)",
        },
    ),
    MethodSpec(
        key="occlusion", label="Occlusion", version="1", signed=True,
        paper="Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks",
        defaults={"window": 16, "stride": 8, "baseline": 0.0, "batch_size": 0},
        docs={
            "window": "side of the square occluding patch, input pixels (all channels at once)",
            "stride": "step between patch positions, input pixels",
            "baseline": "value the patch is set to, normalised input space (0 = the dataset's mean colour)",
            "batch_size": BATCH_SIZE_DOC.format(what="occluded inputs"),
        },
        check=lambda p: _need(p["window"] >= 1 and p["stride"] >= 1 and p["batch_size"] >= 0,
                              "occlusion: need window >= 1, stride >= 1, batch_size >= 0"),
    ),
)
METHOD_SPECS: dict[str, MethodSpec] = {spec.key: spec for spec in SPECS}
assert len(METHOD_SPECS) == len(SPECS), "two methods share a key"


def method_spec_get(key: str) -> MethodSpec:
    try:
        return METHOD_SPECS[key]
    except KeyError:
        raise UnknownMethod(f"unknown method {key!r}; valid methods: {', '.join(sorted(METHOD_SPECS))}") from None


def method_options() -> list[dict[str, Any]]:
    """Every method as a study may choose it, in the catalogue's order."""
    return [spec.as_option() for spec in SPECS]


def method_defaults() -> dict[str, dict[str, Any]]:
    """key -> default parameters (figures label a map by the parameters that differ from these)."""
    return {spec.key: dict(spec.defaults) for spec in SPECS}
