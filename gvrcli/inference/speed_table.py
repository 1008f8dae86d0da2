"""The shipped speed calibration (``gvrcli.inference.speed``), normally written by
``benchmarks/calibrate_speed.py --write`` on a quiet machine, which it then names.

This first table is fitted by hand to whole-process runs on a quiet 2-core AMD EPYC (issue 24:
12 frames 1280x720 -> 2560x1440, OpenVINO 23 strips 72 px wide 69.8 s, 2 tiles 46.2 s; ONNX
Runtime 60 tiles of 144x144 46.8 s) and OpenVINO's per-pixel costs on 960x540 frames in
``gvrcli.inference.memory``'s notes (188 / 165 / 150 ns on whole frames / 960x288 / 960x144): the
calibration run on the 2-core Intel Xeon this was written on was under a load average of 7 and
not usable. Only the shape of each curve matters much: each machine measures its own factor
(probe, first chunk). Units: ``points`` = (padded HR pixels per frame, ns per pixel per frame per
step call), ``call_ms`` per call, ``condition_steps`` the condition graph in step calls,
``padding_share`` the part of a pixel's cost its padded attention tokens cost too, ``setup_s`` a
run's time beyond the model's calls that differs by backend (loading, compiling shapes): OpenVINO's
whole-process runs on the 2-core Xeon spent 1-3 s more outside the model than ONNX Runtime's with a
warm compiled-model cache (``benchmarks/bench_real_sizes.py --quick``)."""

CALIBRATED = {
    "machine": "hand fit: AMD EPYC 2 cores (issue 24 runs) + OpenVINO 960x540 notes; rerun calibrate_speed.py --write",
    "model": "gvr-tiny-x2.onnx",
    "backends": {
        "ort-cpu": {
            "call_ms": 3.0,
            "points": [[27648, 150.0], [82944, 153.0], [518400, 175.0], [1935360, 190.0]],
            "padding_share": 0.6,
            "condition_steps": 0.3,
            "setup_s": 0.0,
        },
        "openvino": {
            "call_ms": 3.0,
            "points": [[27648, 145.0], [138240, 150.0], [276480, 165.0], [518400, 188.0], [1935360, 200.0]],
            "padding_share": 0.6,
            "condition_steps": 0.3,
            "setup_s": 2.0,
        },
    },
}
