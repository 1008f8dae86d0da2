"""The shipped speed calibration (``gvrcli.inference.speed``): written by
``benchmarks/calibrate_speed.py --write``; the machine it came from is named in it. Each
machine corrects the per-pixel term with its own factor at run time."""

CALIBRATED = {
    "machine": "Intel(R) Xeon(R) Processor, 2 cores",
    "model": "gvr-tiny-x2.onnx",
    "backends": {
        "ort-cpu": {
            "call_ms": 48.641,
            "points": [
                [
                    6912,
                    202.94
                ],
                [
                    27648,
                    234.48
                ],
                [
                    110592,
                    222.66
                ],
                [
                    442368,
                    254.31
                ]
            ],
            "padding_share": 1.0,
            "condition_steps": 0.146,
            "setup_s": 0.11
        },
        "openvino": {
            "call_ms": 7.614,
            "points": [
                [
                    6912,
                    300.42
                ],
                [
                    27648,
                    139.86
                ],
                [
                    110592,
                    120.98
                ],
                [
                    442368,
                    159.48
                ]
            ],
            "padding_share": 0.323,
            "condition_steps": 0.332,
            "setup_s": 1.85
        }
    }
}
