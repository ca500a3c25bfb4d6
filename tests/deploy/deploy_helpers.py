"""Helpers of the deploy tests (size, noise, PSNR, one export call)."""

from __future__ import annotations

import numpy as np
import torch

from dreamlite.models.presets import get_preset

SIZE = 32  # image side: a small latent canvas keeps every export and runtime check fast
LATENT = SIZE // 2 ** (len(get_preset("tiny").vae["encoder_block_out_channels"]) - 1)


def noise(seed=3):
    return torch.randn(1, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(seed))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def export_dir(tmp_path_factory, pipe, runtime, quantize=None, log=None):
    from dreamlite.deploy.export import export_pipeline

    out = tmp_path_factory.mktemp(f"{runtime}-{quantize or 'fp32'}")
    export_pipeline(pipe, runtime, str(out), quantize=quantize, height=SIZE, width=SIZE, text_len=48,
                    calibration_samples=4, log=log or (lambda *a: None))
    return out
