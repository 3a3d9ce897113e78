"""Benchmark of fine-tuning toward human maps: seconds per training image against the passes' floor.

    .venv/bin/python bench/finetune.py [--device cpu|cuda] [--batch 8] [--size 224] [--repeats 5]
                                       [--threads N] [--json PATH]
    .venv/bin/python bench/finetune.py --demo digits|decoy [--seeds 0 1 2] [--epochs 5] [--json PATH]

Default mode, on EfficientNet-Lite0 (`explain.zoo.model_trainable`, BatchNorm frozen as the trainer
runs it by default), random images and a random human map per image:

- step: one whole training step of the Harmonization loss (`training.step_losses`: forward, input
  gradient with create_graph, cross-entropy, alignment term; then zero_grad, backward, AdamW step),
  per image; the network prepared as the trainer prepares it (`double_backward_prepared`);
- floor: the passes the step cannot avoid, timed separately on the same batch and network: a forward
  pass, the input-gradient backward (create_graph) and the backward through it (of a fixed random
  linear function of the input gradient, into every parameter); x floor = step / floor, from the
  best round of each (as a shared machine's slow rounds are its neighbours', not ours), the median
  rounds' ratio printed too (target <= 1.3 on the CPU);
- step (PyTorch's own double backward): the same step on a network not prepared (grouped
  convolutions and BatchNorm differentiated by PyTorch's second-order formulas), for comparison;
- control step: cross-entropy only (forward, backward, AdamW).

Each row is timed in `--repeats` rounds after one warm-up round; the rows are measured
interleaved (step, floor, ... in each round), so a shared machine's drift hits them alike. On CUDA
the passes run under bfloat16 autocast as the trainer runs them, and every timing synchronises.

`--demo digits` runs the CPU demonstration (scikit-learn's digits, strokes as human maps, a small
CNN; `explain.finetune.digits`) for each seed and prints the held-out agreement of the three maps and
top-1 accuracy of base, control and aligned; `--demo decoy` adds Ross et al.'s class-coded decoy patch.
`--loss outside_gradient --alignment-weight L` runs the demonstration with Ross et al.'s penalty.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explain.finetune.double_backward import double_backward_prepared  # noqa: E402
from explain.finetune.params import FinetuneParams  # noqa: E402
from explain.finetune.training import optimizer_for, step_losses, train_mode  # noqa: E402
from explain.methods.batching import fast_layout  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(function, device) -> float:
    _sync(device)
    started = time.perf_counter()
    function()
    _sync(device)
    return time.perf_counter() - started


def _batch(size: int, batch: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    human = torch.rand(batch, 1, size, size, generator=g) ** 4
    return {"image": torch.randn(batch, 3, size, size, generator=g), "label": torch.randint(0, 1000, (batch,), generator=g),
            "human_map": human, "has_map": torch.ones(batch)}


def _trainable(device: torch.device, prepared: bool):
    from explain.zoo import model_trainable

    net = model_trainable("efficientnet_lite0", device).net
    if prepared:
        double_backward_prepared(net)
    train_mode(net, "frozen")
    return net


def _step(net, optimizer, batch, params, weight, device):
    def run():
        parts = step_losses(net, batch, params, weight, device)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
    return run


def _floor_parts(net, batch, params, device):
    """(forward, first backward, second backward) seconds on this batch, each timed alone."""
    images = fast_layout(batch["image"].to(device)).requires_grad_(True)
    labels = batch["label"].to(device)
    probe = torch.randn(images.shape[0], *images.shape[2:], generator=torch.Generator().manual_seed(1)).to(device)
    amp = params.mixed_precision and device.type == "cuda"
    state = {}

    def forward():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            state["logits"] = net(images)

    def first():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            picked = state["logits"].gather(1, labels[:, None]).sum()
            (state["grad"],) = torch.autograd.grad(picked, images, create_graph=True)

    def second():
        net.zero_grad(set_to_none=True)
        (state["grad"].float().mean(dim=1) * probe).sum().backward()

    return _timed(forward, device), _timed(first, device), _timed(second, device)


def bench_step(args) -> dict:
    device = torch.device(args.device)
    params = FinetuneParams(batch_size=args.batch)
    batch = _batch(args.size, args.batch, device)
    nets = {"prepared": _trainable(device, True), "plain": _trainable(device, False)}
    optimizers = {name: optimizer_for(net, params) for name, net in nets.items()}
    rows = {"step": [], "floor": [], "forward": [], "backward_1": [], "backward_2": [], "step_plain": [], "control_step": []}
    for round_ in range(args.repeats + 1):
        step = _timed(_step(nets["prepared"], optimizers["prepared"], batch, params, 1.0, device), device)
        f, b1, b2 = _floor_parts(nets["prepared"], batch, params, device)
        plain = _timed(_step(nets["plain"], optimizers["plain"], batch, params, 1.0, device), device) if not args.no_plain else float("nan")
        control = _timed(_step(nets["prepared"], optimizers["prepared"], batch, params, 0.0, device), device)
        if round_:  # the first round warms up
            for key, value in zip(rows, (step, f + b1 + b2, f, b1, b2, plain, control)):
                rows[key].append(value / args.batch)
    best = {key: min(values) for key, values in rows.items()}
    medians = {key: statistics.median(values) for key, values in rows.items()}
    return {"device": str(device), "batch": args.batch, "size": args.size, "threads": torch.get_num_threads(),
            "repeats": args.repeats, "best": best, "median": medians, "x_floor": best["step"] / best["floor"],
            "x_floor_median": medians["step"] / medians["floor"], "rounds": rows}


def print_step(result: dict) -> None:
    m, median = result["best"], result["median"]
    print(f"EfficientNet-Lite0 at {result['size']} px, device {result['device']}, batch {result['batch']}, "
          f"threads {result['threads']}, {result['repeats']} rounds (seconds per training image: best, median)")
    print(f"{'row':44s} {'best':>9s} {'median':>9s} {'x floor':>8s}")
    lines = [("step (trainer's network)", m["step"]), ("floor = forward + backward 1 + backward 2", m["floor"]),
             ("  forward", m["forward"]), ("  backward 1 (input gradient, create_graph)", m["backward_1"]),
             ("  backward 2 (through it, into the weights)", m["backward_2"]),
             ("step (PyTorch's own double backward)", m["step_plain"]), ("control step (cross-entropy only)", m["control_step"])]
    keys = ["step", "floor", "forward", "backward_1", "backward_2", "step_plain", "control_step"]
    for (name, value), key in zip(lines, keys):
        print(f"{name:44s} {value:9.4f} {median[key]:9.4f} {value / m['floor']:8.2f}")
    print(f"x floor (median rounds): {result['x_floor_median']:.2f}")


def bench_demo(args) -> list[dict]:
    from explain.finetune import finetune_run
    from explain.finetune.digits import digits_data, digits_net
    from explain.finetune.run import headline

    out = []
    for seed in args.seeds:
        params = FinetuneParams(epochs=args.epochs, batch_size=32, learning_rate=1e-3, weight_decay=0.0,
                                validation_fraction=1 / 3, seed=seed, bootstrap_resamples=1000, loss=args.loss,
                                alignment_weight=args.alignment_weight)
        data = digits_data(seed, decoy=args.demo == "decoy", validation_fraction=params.validation_fraction)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            result = finetune_run(data, lambda seed=seed: digits_net(seed), params, out_dir=folder, device=args.device)
        seconds = time.perf_counter() - started
        print(json.dumps({"seed": seed, "seconds": round(seconds, 1), **headline(result)}))
        for name, model in result["models"].items():
            spearman = {m: round(v["spearman"]["mean"], 3) for m, v in model["alignment"].items()}
            print(f"  {name:8s} top-1 {model['accuracy']['all']['top1']:.3f}  Spearman {spearman}")
        out.append({"seed": seed, "seconds": seconds, "models": result["models"], "differences": result["differences"]})
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-plain", action="store_true", help="skip the unprepared network's step (slow on the CPU)")
    parser.add_argument("--demo", choices=("digits", "decoy"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--loss", default="harmonization", help="demo: harmonization or outside_gradient")
    parser.add_argument("--alignment-weight", type=float, default=1.0, help="demo: lambda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.demo:
        result = bench_demo(args)
    else:
        result = bench_step(args)
        print_step(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
