"""Training pairs and metrics for this architecture: ``gvr degrade`` (the paper's degradations, HQ -> LQ)
and ``gvr eval`` (PSNR, SSIM, temporal consistency of any checkpoint's output against references)."""
