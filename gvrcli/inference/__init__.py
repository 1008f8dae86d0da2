"""Inference: model files and their manifests, backends (ONNX Runtime, OpenVINO), the sampling engine, tiling."""
