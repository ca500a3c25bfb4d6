"""The sampler of a device: FlowMatch Euler in numpy, with the exact sigmas of the pipeline's scheduler.

A phone app has no diffusers; this is the whole loop it needs (a few lines in any language). The sigmas
reproduce `FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=linspace(1, 1/n, n), mu=...)` with dynamic
shift, in the same float32 arithmetic, so device images match the PyTorch pipeline's.
"""

from __future__ import annotations

import math

import numpy as np

from ..guidance import carry_noise
from ..pipeline import calculate_shift


def flow_sigmas(num_steps: int, latent_height: int, latent_width: int, scheduler_config: dict) -> np.ndarray:
    """float32 sigmas of each step plus the final 0 (length num_steps + 1); timesteps are sigmas * 1000."""
    sigmas = np.linspace(1.0, 1.0 / num_steps, num_steps).astype(np.float32)
    cfg = scheduler_config
    if cfg.get("use_dynamic_shifting", False):
        mu = calculate_shift(
            latent_height * latent_width // 4,
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.16),
        )
        sigmas = math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1) ** 1.0)
    else:
        shift = cfg.get("shift", 1.0)
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return np.append(sigmas.astype(np.float32), np.float32(0.0))


def euler_loop(velocity, latents: np.ndarray, sigmas: np.ndarray, num_train_timesteps: int = 1000,
               noise_scale: float = 1.0) -> np.ndarray:
    """x <- x + (sigma_next - sigma) * v for each step; `velocity(latents, timestep, sigma)` runs the U-Net (the
    timestep is the U-Net's input, the noise level decides the step's guidance), and `noise_scale` scales the noise
    each step carries on, as the pipeline's (`guidance.carry_noise`)."""
    x = latents.astype(np.float32)
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        t = np.float32(sigma * np.float32(num_train_timesteps))
        v = carry_noise(velocity(x, t, sigma).astype(np.float32), x, float(sigma), float(sigma_next), noise_scale)
        x = (x + (sigma_next - sigma) * v).astype(np.float32)
    return x
