"""Parameters and FLOPs per output frame, per preset and attention: ``python -m models.flops``.

FLOPs are counted by ``torch.utils.flop_counter`` (2 per multiply-add, attention included) on the
meta device, so even the base preset at 1080p costs no memory or time. One denoiser step on one
temporal unit of frames, divided by its frames; multiply by the sampler steps for a whole upscale
(and by 2 under classifier-free guidance, ``--cfg``: two network calls per step).

The second table splits a preset's step into its sub-layers' shares: the 2D spatial attention
(per frame, the same windows and routing: linear in area, as the 3D attention) and the text
cross-attention (every video token against the prompt's tokens: linear in area too).
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
    prompt = torch.empty(1, cfg.text_tokens, cfg.text_dim, device="meta") if cfg.text_dim else None
    with FlopCounterMode(display=False) as counter:
        model(z, t, lr, lr, t, prompt)
    return counter.get_total_flops() / T


def layer_shares(preset: str, out_hw: tuple[int, int], attention: str = "sparse", **overrides) -> dict[str, float]:
    """FLOPs per frame of one step with the preset's block, and of its 2D spatial attention and
    text cross-attention sub-layers (the difference the preset makes with each turned off)."""
    cfg = {**PRESETS[preset], **overrides}
    full = flops_per_frame(preset, attention, out_hw, **overrides)
    shares = {"step": full}
    if cfg.get("spatial_attention"):
        shares["spatial"] = full - flops_per_frame(preset, attention, out_hw, **{**overrides, "spatial_attention": False})
    if cfg.get("text_dim"):
        shares["text"] = full - flops_per_frame(preset, attention, out_hw, **{**overrides, "text_dim": 0, "text_tokens": 0})
    return shares


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
    print()
    print(f"{'preset':<6} {'output':>6} {'step':>10} {'2D spatial':>11} {'text xattn':>11}  GFLOPs/frame/step, sparse (--cfg: x2)")
    for preset in args.preset or PRESETS:
        for name, hw in OUTPUTS.items():
            g = {k: v / 1e9 for k, v in layer_shares(preset, hw).items()}
            cell = lambda k: f"{g[k]:>11.1f}" if k in g else f"{'-':>11}"  # noqa: E731
            print(f"{preset:<6} {name:>6} {g['step']:>10.1f} {cell('spatial')} {cell('text')}")


if __name__ == "__main__":
    main()
