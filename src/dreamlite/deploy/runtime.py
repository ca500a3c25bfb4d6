"""Device-style runners: the whole sampling loop from exported graphs, with pre-computed text embeddings.

This is what an app does on a phone: text states come from `dreamlite encode` (or a separate text-encoder
graph), the loop is `flow.euler_loop` in numpy, and only the exported U-Net / VAE graphs run, in
onnxruntime or the ExecuTorch runtime. No PyTorch module is called.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from ..errors import DreamLiteError
from ..guidance import (
    combine_guidance,
    guidance_branches,
    reads_negatives,
    resolve_guidance,
    resolve_max_sigma,
    resolve_noise_scale,
    resolve_steps,
    step_scales,
)
from ..pipeline import check_strength, first_step_at_or_below
from .export import MANIFEST, load_graph
from .flow import euler_loop, flow_sigmas


class DeviceRunner:
    """Generate or edit from an export folder (`dreamlite export ... --out DIR`)."""

    def __init__(self, folder: str):
        path = os.path.join(folder, MANIFEST)
        if not os.path.isfile(path):
            raise DreamLiteError(f"not an export folder (no {MANIFEST}; a failed export leaves none): {folder}")
        with open(path) as f:
            self.manifest = m = json.load(f)
        self.runtime = m["runtime"]
        self.graphs = {name: load_graph(self.runtime, os.path.join(folder, file)) for name, file in m["files"].items()}
        self.height, self.width, self.text_len = m["height"], m["width"], m["text_len"]
        f = m["vae_scale_factor"]
        self.latent_shape = (1, m["latent_channels"], self.height // f, self.width // f)
        self.time_ids = np.array([[self.width, self.height]], np.float32)

    # -------------------------------------------------------------------------------- pieces
    def pad_text(self, embeds, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """[1, L, D] states (+ 0/1 mask) -> the graph's static length, padding masked out."""
        embeds = np.asarray(embeds, np.float32)
        if embeds.ndim != 3 or embeds.shape[0] != 1 or embeds.shape[2] != self.manifest["text_dim"]:
            raise DreamLiteError(f"prompt embeddings must have shape [1, tokens, {self.manifest['text_dim']}], "
                                 f"got {list(embeds.shape)}")
        mask = np.ones(embeds.shape[:2], np.float32) if mask is None else np.asarray(mask, np.float32)
        valid = int(mask[0].sum())
        if valid > self.text_len:
            raise DreamLiteError(f"the prompt has {valid} tokens but this export takes at most {self.text_len} "
                                 "(re-export with a larger --text-len)")
        out = np.zeros((1, self.text_len, embeds.shape[2]), np.float32)
        out_mask = np.zeros((1, self.text_len), np.float32)
        n = min(self.text_len, embeds.shape[1])
        out[:, :n], out_mask[:, :n] = embeds[:, :n], mask[:, :n]
        return out, out_mask

    def encode_image(self, image: Image.Image) -> np.ndarray:
        image = image.convert("RGB")
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.LANCZOS)
        pixels = np.asarray(image, np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        return self.graphs["vae_encoder"](pixels)

    def decode(self, latents: np.ndarray) -> Image.Image:
        pixels = self.graphs["vae_decoder"](latents)[0]
        array = np.clip(pixels / 2 + 0.5, 0, 1).transpose(1, 2, 0)
        return Image.fromarray((array * 255).round().astype(np.uint8))

    # -------------------------------------------------------------------------------- loop
    def resolve_guidance(self, guidance: float | None = None, image_guidance: float | None = None):
        """(text, image) guidance a call uses: the given scales, else the exported model's own defaults."""
        return resolve_guidance(self.manifest, guidance, image_guidance)

    def needs_negatives(self, task: str, guidance: float | None = None, image_guidance: float | None = None) -> bool:
        """Whether a call guides with a branch that reads the negative embeddings."""
        return reads_negatives(guidance_branches(self.manifest["mode"], task, *self.resolve_guidance(guidance, image_guidance)))

    def sample(self, prompt_embeds, prompt_mask=None, source: Image.Image | None = None, latents=None, seed: int = 0,
               steps: int | None = None, negative_embeds=None, negative_mask=None, guidance: float | None = None,
               image_guidance: float | None = None, guidance_max_sigma: float | None = None, strength: float = 1.0,
               noise_scale: float | None = None, output_type: str = "pil"):
        """Generate (no `source`) or edit. Mobile-mode exports sample without guidance; base mode guides with
        the negative embeddings (one graph call per branch, as the graphs have batch 1; a branch whose scale is
        1 is skipped, as in the pipeline, and so is every branch but the text one at steps above the guidance
        interval's `guidance_max_sigma`). An edit with `strength` < 1 starts from the source latent noised to
        that level, as the pipeline's. `noise_scale` (default: the manifest's, else 1) scales the noise each step
        carries on, as the pipeline's."""
        mode = self.manifest["mode"]
        steps = resolve_steps(mode, steps)
        guidance, image_guidance = self.resolve_guidance(guidance, image_guidance)
        max_sigma = resolve_max_sigma(self.manifest, guidance_max_sigma)
        carried = resolve_noise_scale(self.manifest, noise_scale)
        num_train_timesteps = self.manifest["scheduler"].get("num_train_timesteps", 1000)
        embeds, mask = self.pad_text(prompt_embeds, prompt_mask)
        if latents is None:
            latents = np.random.default_rng(seed).standard_normal(self.latent_shape, dtype=np.float32)
        latents = np.asarray(latents, np.float32)
        if latents.shape != self.latent_shape:
            raise DreamLiteError(f"latents must have shape {list(self.latent_shape)}, got {list(latents.shape)}")
        task = "generate" if source is None else "edit"
        check_strength(strength, task)
        cond = self.encode_image(source) if source is not None else np.zeros_like(latents)
        names = guidance_branches(mode, task, guidance, image_guidance)
        if reads_negatives(names):
            if negative_embeds is None:
                raise DreamLiteError("base-mode guidance needs negative embeddings")
            neg, neg_mask = self.pad_text(negative_embeds, negative_mask)
        unet = self.graphs["unet"]

        def call(branch, x, t):
            e, m = (embeds, mask) if branch == "text" else (neg, neg_mask)
            c = np.zeros_like(cond) if branch == "uncond" else cond
            return unet(np.concatenate([x, c], axis=3), np.array([t], np.float32), e, m, self.time_ids)

        def velocity(x, t, sigma):
            g, ig = step_scales(float(sigma), guidance, image_guidance, max_sigma)
            return combine_guidance({b: call(b, x, t) for b in guidance_branches(mode, task, g, ig)}, g, ig)

        sigmas = flow_sigmas(steps, self.latent_shape[2], self.latent_shape[3], self.manifest["scheduler"])
        if strength < 1:
            sigmas = sigmas[first_step_at_or_below(sigmas[:-1], strength):]
            latents = ((1 - sigmas[0]) * cond + sigmas[0] * latents).astype(np.float32)
        latents = euler_loop(velocity, latents, sigmas, num_train_timesteps, carried)
        return latents if output_type == "latent" else self.decode(latents)

    def generate(self, prompt_embeds, prompt_mask=None, **kwargs):
        return self.sample(prompt_embeds, prompt_mask, **kwargs)

    def edit(self, source: Image.Image, prompt_embeds, prompt_mask=None, **kwargs):
        return self.sample(prompt_embeds, prompt_mask, source=source, **kwargs)
