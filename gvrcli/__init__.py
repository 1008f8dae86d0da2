"""gvrcli: the ``gvr`` batch runtime. Runs exported SimpleGVR models (ONNX Runtime or OpenVINO)
over directories of videos; never imports torch.

Library entry point: ``gvrcli.batch.upscale(inputs, UpscaleOptions(...))`` returns a BatchReport.
"""
