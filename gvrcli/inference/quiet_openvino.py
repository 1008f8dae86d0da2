"""OpenVINO, imported the way a farm tool needs it: without telemetry."""

from __future__ import annotations


def import_openvino():
    """``import openvino`` without its telemetry. Importing openvino imports its model converter,
    which, when stdin is a terminal and no consent file exists, forks a process from a thread to
    send a usage event: a farm tool must not phone home, and that fork (holding the loader's
    lock, with gvr's SIGTERM handler) can hang the process at exit. Consent is declined for this
    process only; nothing is written."""
    try:
        from openvino_telemetry.utils import opt_in_checker

        opt_in_checker.OptInChecker.check = lambda self, *a, **k: opt_in_checker.ConsentCheckResult.DECLINED
    except ImportError:
        pass
    import openvino

    return openvino
