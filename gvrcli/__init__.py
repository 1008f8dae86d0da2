"""gvrcli: the ``gvr`` batch runtime. Runs exported SimpleGVR models (ONNX Runtime or OpenVINO)
over directories of videos; never imports torch.

Library entry point: ``gvrcli.batch.upscale.upscale(inputs, UpscaleOptions(...))`` returns a
BatchReport (``UpscaleOptions`` from ``gvrcli.batch.options``); ``gvrcli.api`` wraps it per file.
"""


def version() -> str:
    """The installed distribution's version (what ``pip`` shows), else the source tree's own
    (``models.__version__``, the same number) when run from a checkout that is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gvr")
    except PackageNotFoundError:
        from models import __version__

        return __version__
