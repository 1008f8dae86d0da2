"""int8 artefacts for edge boxes: ``gvr export --precision int8``.

Only the step graph is quantised (it is the work of every sampler step); the condition graph's
few 3-channel convolutions stay fp32. Verified against PyTorch fp32 within ``TOLERANCE["int8"]``.

* ONNX: ONNX Runtime's dynamic quantisation of the MatMul/Gemm weights (int8 per channel;
  activations quantised on the fly), no calibration data needed.
* OpenVINO: NNCF post-training quantisation (int8 weights and activations, transformer mode),
  calibrated on sampler inputs: the network's own condition of smooth synthetic frames and noisy
  latents at the times the sampler visits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.errors import ExportError

CALIBRATION_SHAPE = (5, 27, 48)  # (T, h, w) of the LR latent: one temporal unit, a few windows
CALIBRATION_SAMPLES = 8


def quantize_onnx(path: Path, manifest) -> None:
    """Quantise the ONNX step graph at ``path`` in place and write ``manifest`` into it."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from export.metadata import write_onnx

    tmp = path.with_name(path.name + ".int8")
    proto = onnx.load(str(path))
    # The exporter's recorded intermediate shapes trip ONNX's shape inference, which the quantiser
    # reruns; without them inference starts fresh and agrees with itself.
    del proto.graph.value_info[:]
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" advice
    try:
        quantize_dynamic(proto, str(tmp), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
    except Exception as e:
        raise ExportError(f"ONNX int8 quantisation failed: {type(e).__name__}: {str(e).strip()[:200]}") from e
    proto = onnx.load(str(tmp))
    write_onnx(proto, manifest)
    onnx.save(proto, str(path))
    tmp.unlink()


def calibration_feeds(model, samples: int = CALIBRATION_SAMPLES, shape=CALIBRATION_SHAPE) -> list[dict[str, np.ndarray]]:
    """Step-graph inputs as the sampler produces them for smooth moving frames."""
    import torch

    from models.rectified_flow import timesteps

    cfg = model.config
    T, h, w = shape
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    feeds = []
    ts = timesteps(max(samples, 1))
    for i in range(samples):
        frames = np.stack([np.stack([np.sin(x / (3 + c + i) + k * 0.3 + y / (5 + c)) for c in range(cfg.latent_channels)]) for k in range(T)], 1)
        lr = torch.from_numpy(frames[None].astype(np.float32))  # (1, C, T, h, w) in [-1, 1]
        level = torch.tensor([cfg.noise_aug], dtype=torch.float32)
        with torch.no_grad():
            cond, *base = model.condition(lr, torch.from_numpy(rng.standard_normal(lr.shape, dtype=np.float32)), level)
        t, t_next = ts[i % (len(ts) - 1)], ts[i % (len(ts) - 1) + 1]
        x0 = (base[0] if base else cond).numpy()
        z = (1 - t) * x0 + t * rng.standard_normal(x0.shape, dtype=np.float32)
        feed = {"z_t": z.astype(np.float32), "t": np.array([t], np.float32), "t_next": np.array([t_next], np.float32),
                "cond": cond.numpy(), "noise_aug": level.numpy()}
        if base:
            feed["base"] = base[0].numpy()
        if cfg.text_dim:  # the null prompt and random ones, as guided sampling feeds both
            prompt = None if i % 2 else torch.from_numpy(rng.standard_normal((1, cfg.text_tokens, cfg.text_dim), dtype=np.float32))
            with torch.no_grad():
                feed["text"] = model.prompt_tokens(prompt).numpy()
        feeds.append(feed)
    return feeds


def quantize_openvino(ov_model, model, *, dynamic: bool, static_shape):
    """NNCF int8 quantisation of the OpenVINO step graph, calibrated on ``calibration_feeds``."""
    try:
        import nncf
    except ImportError:
        raise ExportError("--precision int8 for OpenVINO needs NNCF: pip install -e '.[export]'") from None
    import logging

    nncf.set_log_level(logging.ERROR)
    shape = CALIBRATION_SHAPE if dynamic else tuple(static_shape)
    feeds = calibration_feeds(model, shape=shape)
    # An input may carry several tensor names (the frontend adds its own): take ours.
    names = [next(n for n in i.get_names() if n in feeds[0]) for i in ov_model.inputs]
    try:
        return nncf.quantize(
            ov_model,
            nncf.Dataset(feeds, lambda feed: {n: feed[n] for n in names}),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(feeds),
        )
    except Exception as e:
        raise ExportError(f"OpenVINO int8 quantisation failed: {type(e).__name__}: {str(e).strip()[:200]}") from e
