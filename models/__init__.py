"""SimpleGVR reference model (PyTorch, inference only).

The torch-free parts (``models.manifest``, ``models.rectified_flow``, ``models.codec``) are
shared with the runtime, which must not import torch, so this package imports torch lazily:
``import models.manifest`` stays light, ``models.build_model`` pulls in the network.
"""

__version__ = "0.1.0"

_LAZY = {
    "GVRConfig": "models.simplegvr",
    "PRESETS": "models.simplegvr",
    "SimpleGVR": "models.simplegvr",
    "build_model": "models.simplegvr",
    "save_model": "models.checkpoint",
    "load_model": "models.checkpoint",
    "CheckpointError": "models.tensorfile",
    "init_random_": "models.checkpoint",
    "weights_sha256": "models.tensorfile",
    "build_vae": "models.vae",
    "save_vae": "models.vae",
    "load_vae": "models.vae",
    "VaeCodec": "models.vae",
    "VaeEncoderStep": "models.vae",
    "VaeDecoderStep": "models.vae",
    "VaeError": "models.vae",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
