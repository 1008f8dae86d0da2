"""Guidance: two batch-1 step calls (null, prompt) vs one batch-2 call, on CPU.

The runtime runs the step graph twice per guided step (``gvrcli.inference.sampler``); this measures
whether one call on a batch of two would be faster. PyTorch eager on CPU (the exported graphs are
batch 1, so ONNX Runtime/OpenVINO cannot be asked for batch 2 without a second export); the same
network, threads and inputs in both arms, median of ``--repeat`` runs after a warm-up.

    python benchmarks/bench_cfg.py                      # tiny + text path, 8 x 270x480 -> 540x960
    python benchmarks/bench_cfg.py --frames 2 --height 64 --width 96 --repeat 2   # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import models
from models.checkpoint import init_random_


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--height", type=int, default=270, help="LR height")
    parser.add_argument("--width", type=int, default=480, help="LR width")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = init_random_(models.build_model("tiny", text_dim=64, text_tokens=32, spatial_attention=True), seed=0)
    cfg = model.config
    T, h, w = args.frames, args.height, args.width
    z = torch.randn(1, 3, T, 2 * h, 2 * w)
    t, t_next, a = torch.tensor([0.8]), torch.tensor([0.6]), torch.tensor([0.3])
    with torch.no_grad():
        cond, base = model.condition(torch.rand(1, 3, T, h, w) * 2 - 1, torch.randn(1, 3, T, h, w), a)
        null, prompt = model.prompt_tokens(None), model.prompt_tokens(torch.randn(1, cfg.text_tokens, cfg.text_dim))

    def two_calls():
        zn = model.step(z, t, t_next, cond, a, base, null)
        zp = model.step(z, t, t_next, cond, a, base, prompt)
        return zn + 3.0 * (zp - zn)

    def one_batch():
        two = lambda x: x.expand(2, *x.shape[1:])  # noqa: E731
        out = model.step(two(z), two(t), two(t_next), two(cond), two(a), two(base), torch.cat([null, prompt]))
        return out[:1] + 3.0 * (out[1:] - out[:1])

    times = {}
    with torch.no_grad():
        assert torch.allclose(two_calls(), one_batch(), atol=1e-4), "both arms compute the same guided step"
        for name, fn in (("two batch-1 calls", two_calls), ("one batch-2 call", one_batch)):
            runs = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - start)
            times[name] = statistics.median(runs)
    for name, seconds in times.items():
        print(f"{name:<18} {1000 * seconds:9.1f} ms per guided step  ({T} x {h}x{w} -> {2 * h}x{2 * w}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
