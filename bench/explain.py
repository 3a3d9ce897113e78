"""Benchmark of the explanation methods: seconds per image, the floor, and the reference library.

    .venv/bin/python bench/explain.py [--quick] [--methods a,b] [--images 3] [--json PATH]
    .venv/bin/python bench/explain.py --across-stimuli 8 [--known-targets] [--methods a,b] [--repeats 3] [--json PATH]

For EVERY method registered in `explain.methods.METHODS` at run time (and insertion/deletion, key
`insdel`), on EfficientNet-Lite0 at 224 x 224 (photos from scikit-image, resized whole), on this CPU
and on CUDA when present:

- seconds per image of `method.attribute`, one image per call (median over the images; a single-pass
  method gets one untimed call first, since its first backward builds kernels);
- for the single-pass methods (`batches_across_inputs`: gradient, guided backprop, Grad-CAM, guided
  Grad-CAM, FEM) a second row, "(N per task)": all N images, each with its own target, in calls of the
  pipeline's batch size (`batch_size_for(device, backward=True)`: 4 on CPU), as a worker runs a task
  of a study's jobs (`explain_images`); median of 5 runs, per image;
- passes: forward-only and forward+backward rows the method actually ran per image (counted by a hook
  on the network);
- floor = F rows x forward time per image + FB rows x forward+backward time per image. The best batch
  size and layout come from a sweep over batch sizes 1..16 and both memory layouts (first, in the same
  run); the pass times that price each row are re-measured at that batch size and layout right before
  and right after the row (best of 5 each side), so a shared machine whose speed drifts between the
  sweep and the row does not bias x floor. x floor is seconds / floor (target <= 1.2);
- in passes: for forward-only methods, the share of the method's own wall-clock time spent inside the
  network's forward passes (timed by hooks on the network during the timed run itself). Unlike x floor
  it does not compare two moments of a machine whose speed drifts: 100% minus it is what the method
  adds around its passes (building masks, samples and curves, segmentation, the weighted sums);
- the reference library called as its documentation shows, on the same image(s), same N: captum for
  the gradient family and occlusion, PAIR `saliency` XRAI, the literal eclique/RISE port, `lime`,
  the FEM authors' numpy code, the literal RISE CausalMetric; x ref = ours / reference on the same
  images (target <= 1, XRAI <= 0.5). Slow references run on the first `--ref-images` images (default
  2), and x ref then takes ours on those images, not the median over all of them.

`--across-stimuli N` (a mode of its own): N photos (the eight of PHOTOS, cycled, each at its own resolution)
through the whole pipeline, one job at a time (`explain_image` per photo) vs batched across stimuli
(`explain_images`, as a worker task of N jobs runs them), for the single-pass methods (default
gradient, gradcam, guided_backprop, guided_gradcam, fem); median of `--repeats` runs after a warm-up;
seconds per image and the speedup. `--known-targets` gives each photo its class (as a labelled
stimulus has), so the pipeline takes the probabilities from the method's own forward pass.

`--quick` uses small N (RISE 64 masks, LIME 64 samples, occlusion 56/28, XRAI 8 steps, insertion/
deletion 15 steps) for ours and the reference alike: it proves the script works; ratios at full N
are what count. The machine is shared: rerun on a quiet machine for figures to quote.
Integrated Gradients runs with a fixed `steps` of 50, the reference's count, in both modes (its
default doubles the steps until the completeness gap is within 2%: docs/explain.md).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explain.faithfulness import insertion_deletion  # noqa: E402
from explain.methods import METHODS  # noqa: E402
from explain.methods.batching import batch_size_for, fast_layout  # noqa: E402
from explain.pipeline import image_to_input  # noqa: E402
from explain.zoo import model_load  # noqa: E402

# RGB photos that ship inside scikit-image (no download).
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "cat")
QUICK = {
    "rise": {"n_masks": 64},
    "lime": {"samples": 64},
    "occlusion": {"window": 56, "stride": 28},
    "xrai": {"steps": 8},
}
# Parameters of ours in every mode, so that ours and the reference do the same passes.
FIXED = {"integrated_gradients": {"steps": 50}}
INSDEL_STEP = {False: 224, True: 224 * 15}


def photos(count: int):
    import skimage.data
    from PIL import Image

    return [Image.fromarray(getattr(skimage.data, name)()) for name in PHOTOS[:count]]


class PassCounter:
    """Counts the rows a network forwards, split by whether autograd records them (then backward),
    and the wall-clock seconds spent inside forward-only passes (`forward_seconds`)."""

    def __init__(self, net):
        self.forward = self.backward = 0
        self.forward_seconds, self._started = 0.0, 0.0
        self.handles = [net.register_forward_pre_hook(self._pre), net.register_forward_hook(self._hook)]

    def _pre(self, _module, _inputs):
        self._started = time.perf_counter()

    def _hook(self, _module, _inputs, output):
        if output.requires_grad:
            self.backward += output.shape[0]
        else:
            self.forward += output.shape[0]
            if output.device.type == "cuda":
                torch.cuda.synchronize()
            self.forward_seconds += time.perf_counter() - self._started

    def close(self):
        for handle in self.handles:
            handle.remove()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


LAYOUTS = {"nchw": lambda t: t, "channels_last": fast_layout}


def pass_seconds(net, device, kind, batch, layout, repeats) -> float:
    """Best per-image seconds of `repeats` forward (kind "forward") or forward+backward passes."""
    x = LAYOUTS[layout](torch.randn(batch, 3, 224, 224, device=device))
    times = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        if kind == "forward":
            with torch.no_grad():
                net(x)
        else:
            leaf = x.detach().requires_grad_(True)
            torch.autograd.grad(net(leaf)[:, 0].sum(), leaf)
        sync(device)
        times.append((time.perf_counter() - started) / batch)
    return min(times)


def pass_times(net, device, quick=False) -> dict:
    """Best per-image seconds of a forward and of a forward+backward over batch sizes and layouts."""
    best = {"forward": math.inf, "backward": math.inf}
    for batch in (1, 16) if quick else (1, 2, 4, 8, 16):
        for layout in LAYOUTS:
            for kind in ("forward", "backward"):
                seconds = pass_seconds(net, device, kind, batch, layout, 2 if quick else 3)
                if seconds < best[kind]:
                    best[kind], best[f"{kind}_batch"], best[f"{kind}_layout"] = seconds, batch, layout
    return best


def run_ours(key, model, inputs, targets, params, quick):
    """(median seconds per image, F rows per image, FB rows per image, in-passes share, seconds of each
    image), one image per call."""
    net, seconds = model.net, []
    with torch.no_grad():  # warm both layouts' batch-1 kernels outside the timing
        net(inputs[0])
        net(fast_layout(inputs[0]))
    if key != "insdel" and METHODS[key].batches_across_inputs:
        # one untimed call: a single-pass method's first backward builds its kernels (it was 2x the
        # steady time); the many-pass methods repeat each batch shape hundreds of times anyway
        METHODS[key].attribute(net, inputs[0], torch.tensor([targets[0]], device=model.device), METHODS[key].params_resolve(params))
    counter = PassCounter(net)
    try:
        for x, target in zip(inputs, targets):
            sync(model.device)
            started = time.perf_counter()
            if key == "insdel":
                saliency = torch.rand(224, 224, generator=torch.Generator().manual_seed(0))
                insertion_deletion(net, x, saliency, target, step=INSDEL_STEP[quick])
            else:
                method = METHODS[key]
                method.attribute(net, x, torch.tensor([target], device=model.device), method.params_resolve(params))
            sync(model.device)
            seconds.append(time.perf_counter() - started)
    finally:
        counter.close()
    share = counter.forward_seconds / sum(seconds) if not counter.backward else math.nan
    return statistics.median(seconds), counter.forward / len(inputs), counter.backward / len(inputs), share, seconds


def run_ours_batched(key, model, inputs, targets, repeats=5):
    """A single-pass method as a worker runs a study's jobs (`explain_images`): every image in one
    call, each with its own target. (median seconds per image, F rows per image, FB rows per image,
    in-passes share)."""
    method, net = METHODS[key], model.net
    x, target = torch.cat(inputs), torch.tensor(targets, device=model.device)
    params, size = method.params_resolve({}), batch_size_for(model.device, backward=True)

    def run():  # in chunks of the pipeline's batch size, as `explain_images` runs them
        for start in range(0, len(inputs), size):
            method.attribute(net, x[start : start + size], target[start : start + size], params)

    run()  # warm-up: this batch size's kernels
    counter, seconds = PassCounter(net), []
    try:
        for _ in range(repeats):
            sync(model.device)
            started = time.perf_counter()
            run()
            sync(model.device)
            seconds.append((time.perf_counter() - started) / len(inputs))
    finally:
        counter.close()
    rows = repeats * len(inputs)
    share = counter.forward_seconds / (sum(seconds) * len(inputs)) if not counter.backward else math.nan
    return statistics.median(seconds), counter.forward / rows, counter.backward / rows, share


def pass_times_near(net, device, best, repeats=5) -> dict:
    """Per-image forward and forward+backward seconds at the sweep's best batch size and layout,
    measured now: each method's floor is priced with passes timed right before and after it, so a
    machine whose speed drifts (shared cores) does not bias the ratio either way."""
    return {
        kind: pass_seconds(net, device, kind, best[f"{kind}_batch"], best[f"{kind}_layout"], repeats)
        for kind in ("forward", "backward")
    }


# --- references, each called as its documentation shows -----------------------------------------


def reference_call(key, net, x, target, params, quick):
    """A zero-argument callable running the reference for one image, or None when there is none."""
    import captum.attr as ca

    simple = {
        "gradient": lambda: ca.Saliency(net).attribute(x, target=target, abs=True),
        "integrated_gradients": lambda: ca.IntegratedGradients(net).attribute(x, target=target, n_steps=50),
        "smoothgrad": lambda: ca.NoiseTunnel(ca.Saliency(net)).attribute(
            x, nt_type="smoothgrad", nt_samples=50, stdevs=0.15 * float(x.max() - x.min()), target=target
        ),
        "guided_backprop": lambda: ca.GuidedBackprop(net).attribute(x, target=target),
        "gradcam": lambda: ca.LayerGradCam(net, net.features).attribute(x, target=target, relu_attributions=True),
        "guided_gradcam": lambda: ca.GuidedGradCam(net, net.features).attribute(x, target=target),
    }
    if key in simple:
        return simple[key]
    if key == "occlusion":
        window, stride = params.get("window", 16), params.get("stride", 8)
        return lambda: ca.Occlusion(net).attribute(
            x, target=target, sliding_window_shapes=(3, window, window), strides=(3, stride, stride), baselines=0
        )
    if key == "xrai":
        return lambda: pair_xrai(net, x, target, params.get("steps", 100))
    if key == "rise":
        return lambda: literal_rise(net, x, target, params.get("n_masks", 4000))
    if key == "lime":
        return lambda: lime_reference(net, x, target, params.get("samples", 1000))
    if key == "fem":
        return lambda: literal_fem(net, x)
    if key == "insdel":
        return lambda: literal_insdel(net, x, INSDEL_STEP[quick])
    return None


def pair_xrai(net, x, target, steps):
    from saliency.core import XRAI, XRAIParameters
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    def call_model_function(images, call_model_args=None, expected_keys=None):
        # as PAIR's Examples_pytorch.ipynb (`PreprocessImages`): the NHWC batch transposed and copied
        # into a new NCHW tensor; the gradients moved back to NHWC. (The notebook's /255 and
        # normalisation are left out, the input here is normalised already; its softmax too: the
        # score is the logit, as in our XRAI.)
        images = torch.tensor(np.transpose(images, (0, 3, 1, 2)), dtype=torch.float32).requires_grad_(True)
        outputs = net(images)[:, target]
        grads = torch.autograd.grad(outputs, images, grad_outputs=torch.ones_like(outputs))
        return {INPUT_OUTPUT_GRADIENTS: torch.movedim(grads[0], 1, 3).detach().numpy()}

    image = x[0].permute(1, 2, 0).numpy()
    return XRAI().GetMask(image, call_model_function, batch_size=20, extra_parameters=XRAIParameters(steps=steps))


def literal_rise(net, x, target, n_masks):
    from tests.explain.rise_reference import RISEReference

    explainer = RISEReference(torch.nn.Sequential(net, torch.nn.Softmax(dim=1)), (224, 224), gpu_batch=100)
    rng = np.random.default_rng(0)
    explainer.generate_masks(n_masks, 7, 0.5, rng.random((n_masks, 7, 7)) < 0.5, rng.integers(0, 32, (n_masks, 2)))
    with torch.no_grad():
        return explainer(x)[target]


def lime_reference(net, x, target, samples):
    from lime.lime_image import LimeImageExplainer

    def batch_predict(images):
        # as lime's PyTorch tutorial: one CHW tensor per image (its ToTensor), stacked; softmax
        batch = torch.stack([torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() for image in images])
        with torch.no_grad():
            return net(batch).softmax(dim=1).numpy()

    image = x[0].permute(1, 2, 0).double().numpy()
    image = (image - image.min()) / (image.max() - image.min())  # lime segments an RGB image
    return LimeImageExplainer(random_state=0).explain_instance(
        image, batch_predict, labels=(target,), top_labels=None, hide_color=None, num_samples=samples
    )


def literal_fem(net, x):
    from explain.methods.base import activations_captured
    from tests.explain.fem_reference import fem_literal

    with torch.no_grad(), activations_captured(net.features) as store:
        net(x)
    return fem_literal(store["activations"].detach().permute(0, 2, 3, 1).double().numpy())


def literal_insdel(net, x, step):
    from tests.explain.rise_reference import CausalMetric, blur_substrate

    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=1))
    saliency = torch.rand(224, 224, generator=torch.Generator().manual_seed(0)).numpy()
    CausalMetric(model, "ins", step, blur_substrate(11, 5), 224 * 224).single_run(x.clone(), saliency)
    CausalMetric(model, "del", step, torch.zeros_like, 224 * 224).single_run(x.clone(), saliency)


def reference_seconds(key, net, inputs, targets, params, args, together=False) -> tuple[float, int]:
    """(median seconds per image of the reference, how many of the first images it ran on): one image
    per call (slow references on the first `--ref-images` images), or, `together`, every image in one
    call with its own target (as Captum's documentation allows); a fast reference gets one untimed
    call first, as ours does."""
    if together:
        calls = [(torch.cat(inputs), torch.tensor(targets), len(inputs))]
    else:
        count = args.ref_images if key in SLOW_REFERENCES else len(inputs)
        calls = [(x, target, 1) for x, target in list(zip(inputs, targets))[:count]]
    if reference_call(key, net, calls[0][0], calls[0][1], params, args.quick) is None:
        return math.nan, 0
    if key not in SLOW_REFERENCES:
        reference_call(key, net, calls[0][0], calls[0][1], params, args.quick)()
    times = []
    for x, target, images in calls:
        call = reference_call(key, net, x, target, params, args.quick)
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) / images)
    return statistics.median(times), sum(images for _x, _target, images in calls)


SLOW_REFERENCES = {"xrai", "rise", "lime", "occlusion", "insdel", "smoothgrad", "integrated_gradients"}


def table(title, header, rows):
    def cell(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else (f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}")
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for r in cells:
        print("| " + " | ".join(r) + " |")


ACROSS_DEFAULT = ("gradient", "gradcam", "guided_backprop", "guided_gradcam", "fem")


def across_stimuli(model, keys, count, repeats, known_targets=False) -> dict:
    """{method: {one_by_one, batched (seconds per image), speedup}} over `count` photos; with
    `known_targets` each photo comes with its class (as a labelled stimulus does), else the pipeline
    finds its top prediction first."""
    from explain.pipeline import explain_image, explain_images, image_to_input

    distinct = photos(min(count, len(PHOTOS)))
    images = [distinct[i % len(distinct)] for i in range(count)]
    targets = [None] * count
    if known_targets:
        with torch.no_grad():
            targets = [int(model.net(image_to_input(image, model)).argmax()) for image in images]
    records = {}
    for key in keys:
        def one(key=key):
            return [explain_image(model, image, key, target=target) for image, target in zip(images, targets)]

        def many(key=key):
            return explain_images(model, images, key, targets=targets)

        one(), many()  # warm-up: kernels for both batch sizes
        times = {"one_by_one": [], "batched": []}
        for _ in range(repeats):
            for name, run in (("one_by_one", one), ("batched", many)):
                sync(model.device)
                started = time.perf_counter()
                run()
                sync(model.device)
                times[name].append((time.perf_counter() - started) / count)
        record = {name: statistics.median(values) for name, values in times.items()}
        record["speedup"] = record["one_by_one"] / record["batched"]
        records[key] = record
        print(f"  {key}: {record['one_by_one']:.3f} -> {record['batched']:.3f} s/image", file=sys.stderr, flush=True)
    return records


def across_main(args, keys) -> None:
    results = {"mode": "across_stimuli", "stimuli": args.across_stimuli, "repeats": args.repeats,
               "known_targets": args.known_targets,
               "torch_threads": torch.get_num_threads(), "devices": {}}
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        model = model_load("efficientnet_lite0", device)
        records = across_stimuli(model, keys, args.across_stimuli, args.repeats, args.known_targets)
        table(
            f"{args.across_stimuli} stimuli on {device}, one job at a time vs batched across stimuli "
            f"(whole pipeline, EfficientNet-Lite0, median of {args.repeats})",
            ["method", "one by one s/image", "batched s/image", "speedup"],
            [[key, r["one_by_one"], r["batched"], f"{r['speedup']:.2f}x"] for key, r in records.items()],
        )
        results["devices"][str(device)] = records
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
        print(f"\nwrote {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N for ours and the references")
    parser.add_argument("--methods", help="comma-separated keys (default: every registered method + insdel)")
    parser.add_argument("--images", type=int, default=3, help=f"images for our methods (max {len(PHOTOS)})")
    parser.add_argument("--ref-images", type=int, default=2, help="images for the slow references")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--across-stimuli", type=int, metavar="N",
                        help="mode: N stimuli one job at a time vs batched across stimuli (single-pass methods)")
    parser.add_argument("--repeats", type=int, default=3, help="--across-stimuli: runs per timing (median)")
    parser.add_argument("--known-targets", action="store_true",
                        help="--across-stimuli: give each photo its class, as a labelled stimulus (no prediction pass first)")
    args = parser.parse_args()
    if args.across_stimuli:
        keys = args.methods.split(",") if args.methods else list(ACROSS_DEFAULT)
        unknown = [k for k in keys if k not in METHODS]
        if unknown:
            parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(sorted(METHODS))}")
        return across_main(args, keys)
    keys = args.methods.split(",") if args.methods else [*sorted(METHODS), "insdel"]
    unknown = [k for k in keys if k not in METHODS and k != "insdel"]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join([*sorted(METHODS), 'insdel'])}")
    if not args.no_reference:  # import the references up front, so no import lands inside a timing
        import captum.attr  # noqa: F401
        import lime.lime_image  # noqa: F401
        import saliency.core  # noqa: F401

        import tests.explain.fem_reference  # noqa: F401
        import tests.explain.rise_reference  # noqa: F401
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results = {"quick": args.quick, "torch_threads": torch.get_num_threads(), "devices": {}}
    for device in devices:
        model = model_load("efficientnet_lite0", device)
        inputs = [image_to_input(image, model) for image in photos(args.images)]
        with torch.no_grad():
            targets = [int(model.net(x).argmax()) for x in inputs]
        floor = pass_times(model.net, device, args.quick)
        table(
            f"pass times on {device} (per image, best batch size and layout)",
            ["pass", "ms", "batch", "layout"],
            [["forward", floor["forward"] * 1e3, floor["forward_batch"], floor["forward_layout"]],
             ["forward+backward", floor["backward"] * 1e3, floor["backward_batch"], floor["backward_layout"]]],
        )
        rows, records = [], {}
        for key in keys:
            params = {**FIXED.get(key, {}), **(QUICK.get(key, {}) if args.quick else {})}
            batched = key != "insdel" and METHODS[key].batches_across_inputs and len(inputs) > 1
            for suffix in ("", f" ({len(inputs)} per task)") if batched else ("",):
                before = pass_times_near(model.net, device, floor)
                if suffix:
                    seconds, f_rows, fb_rows, in_passes = run_ours_batched(key, model, inputs, targets)
                    each = [seconds] * len(inputs)
                else:
                    seconds, f_rows, fb_rows, in_passes, each = run_ours(key, model, inputs, targets, params, args.quick)
                after = pass_times_near(model.net, device, floor)
                near = {kind: min(before[kind], after[kind]) for kind in before}
                floor_s = f_rows * near["forward"] + fb_rows * near["backward"]
                ref_s, ref_images = math.nan, 0
                if device.type == "cpu" and not args.no_reference:
                    ref_s, ref_images = reference_seconds(key, model.net, inputs, targets, params, args, together=bool(suffix))
                # x ref compares the two on the same images (a slow reference runs on the first few only)
                ours_same = statistics.median(each[:ref_images]) if ref_images else math.nan
                record = {"seconds": seconds, "forward_rows": f_rows, "backward_rows": fb_rows, "floor": floor_s,
                          "floor_passes": near, "x_floor": seconds / floor_s if floor_s else math.nan,
                          "reference_seconds": ref_s, "reference_images": ref_images, "seconds_on_reference_images": ours_same,
                          "x_reference": ours_same / ref_s if ref_s == ref_s else math.nan,
                          "in_passes": in_passes, "params": params}
                records[key + suffix] = record
                rows.append([key + suffix, seconds, f"{f_rows:g}", f"{fb_rows:g}", floor_s, record["x_floor"],
                             "-" if math.isnan(in_passes) else f"{100 * in_passes:.0f}%", ref_s, record["x_reference"]])
                print(f"  {key}{suffix}: {seconds:.3f} s/image", file=sys.stderr, flush=True)
        table(
            f"methods on {device}, EfficientNet-Lite0 224 x 224{' (--quick)' if args.quick else ''}",
            ["method", "s/image", "F rows", "FB rows", "floor s", "x floor", "in passes", "reference s", "x ref"],
            rows,
        )
        results["devices"][str(device)] = {"passes": floor, "methods": records}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
