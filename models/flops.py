"""Parameters and FLOPs per output frame, per preset and attention: ``python -m models.flops``.

FLOPs are counted by ``torch.utils.flop_counter`` (2 per multiply-add, attention included) on the
meta device, so even the base preset at 1080p costs no memory or time. One denoiser step on one
temporal unit of frames, divided by its frames; multiply by the sampler steps for a whole upscale.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.simplegvr import PRESETS, build_model

OUTPUTS = {"540p": (540, 960), "1080p": (1080, 1920)}


def flops_per_frame(preset: str, attention: str, out_hw: tuple[int, int], scale: int = 2, **overrides) -> float:
    model = build_model(preset, attention=attention, scale=scale, **overrides).to("meta")
    cfg = model.config
    T, (H, W) = cfg.temporal_unit, out_hw
    z = torch.empty(1, cfg.latent_channels, T, H, W, device="meta")
    lr = torch.empty(1, cfg.latent_channels, T, H // scale, W // scale, device="meta")
    t = torch.empty(1, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(z, t, lr, lr, t)
    return counter.get_total_flops() / T


def graph_flops(model, T: int, H: int, W: int) -> dict[str, float]:
    """FLOPs of one run of each exported graph (``condition`` once per clip, ``step`` once per
    sampler step) for a clip of T frames at H x W output, counted on the meta device."""
    cfg = model.config
    model = build_model(**{**cfg.to_dict(), "window": cfg.window}).to("meta") if next(model.parameters()).device.type != "meta" else model
    s, C = cfg.scale, cfg.latent_channels
    z = torch.empty(1, C, T, H, W, device="meta")
    lr = torch.empty(1, C, T, H // s, W // s, device="meta")
    t = torch.empty(1, device="meta")
    counts = {}
    with FlopCounterMode(display=False) as counter:
        conds = model.condition(lr, lr, t)
    counts["condition"] = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model.step(z, t, t, conds[0], t, *conds[1:])
    counts["step"] = counter.get_total_flops()
    return counts


def parameter_count(preset: str) -> int:
    return sum(p.numel() for p in build_model(preset).to("meta").parameters())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(PRESETS), action="append", help="default: all")
    args = parser.parse_args(argv)
    print(f"{'preset':<6} {'params':>9} {'output':>6} {'sparse':>10} {'swin':>10} {'full':>10}  GFLOPs/frame/step")
    for preset in args.preset or PRESETS:
        params = parameter_count(preset)
        for name, hw in OUTPUTS.items():
            g = {a: flops_per_frame(preset, a, hw) / 1e9 for a in ("sparse", "swin", "full")}
            print(
                f"{preset:<6} {params / 1e6:>8.2f}M {name:>6} {g['sparse']:>10.1f} {g['swin']:>10.1f} {g['full']:>10.1f}"
                f"  (full/sparse {g['full'] / g['sparse']:.1f}x, swin/sparse {g['swin'] / g['sparse']:.2f}x)"
            )
    print("paper (SimpleGVR, its resolution): sparse 377, swin 453, full 1613 GFLOPs")


if __name__ == "__main__":
    main()
