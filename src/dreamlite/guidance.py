"""Sampling defaults per mode, which U-Net branches a sampling step needs and how their velocities combine
(classifier-free guidance), and at which noise levels guidance applies.

Torch-free, so the PyTorch pipeline, the exported-graph runners and the trainers share one definition.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Mapping

from .errors import DreamLiteError

DEFAULT_STEPS = {"base": 28, "mobile": 4}  # sampling steps per pipeline mode
DEFAULT_GUIDANCE = 3.5
DEFAULT_IMAGE_GUIDANCE = 1.5
RECORDED_KEYS = ("guidance_scale", "image_guidance_scale", "guidance_max_sigma", "noise_scale")  # per-model sampling defaults


def check_steps(steps) -> int:
    """A sampling step count is a positive integer: 0 or a negative count is an error, never the default."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise DreamLiteError(f"the number of sampling steps must be a positive integer, got {steps!r}")
    return int(steps)


def resolve_steps(mode: str, steps: int | None = None) -> int:
    """Sampling steps a call uses: the given count (checked), else the mode's default."""
    return DEFAULT_STEPS[mode] if steps is None else check_steps(steps)


def resolve_guidance(recorded: Mapping, guidance: float | None = None,
                     image_guidance: float | None = None) -> tuple[float, float]:
    """(text, image) scales a call uses: the given ones, else the model's recorded defaults (`guidance_scale` /
    `image_guidance_scale` of its pipeline config or export manifest, chosen on validation when it was shipped),
    else the global defaults."""
    g, ig = recorded.get("guidance_scale"), recorded.get("image_guidance_scale")
    text = guidance if guidance is not None else DEFAULT_GUIDANCE if g is None else g
    image = image_guidance if image_guidance is not None else DEFAULT_IMAGE_GUIDANCE if ig is None else ig
    return check_guidance_scale("guidance_scale", text), check_guidance_scale("image_guidance_scale", image)


def check_guidance_scale(name: str, value) -> float:
    """A guidance scale is a finite number >= 0: NaN would sample a black image, a negative one the opposite
    of the prompt."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise DreamLiteError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def resolve_max_sigma(recorded: Mapping, max_sigma: float | None = None) -> float:
    """The highest noise level a call guides at: the given one, else the model's recorded `guidance_max_sigma`,
    else 1 (every step). Checked here, so every sampler rejects a bad value the same way."""
    value = max_sigma if max_sigma is not None else recorded.get("guidance_max_sigma")
    value = 1.0 if value is None else value
    if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise DreamLiteError(f"guidance_max_sigma must be in (0, 1], got {value!r}")
    return float(value)


def resolve_noise_scale(recorded: Mapping, noise_scale: float | None = None) -> float:
    """The noise scale a call uses: the given one, else the model's recorded `noise_scale`, else 1 (the plain
    Euler step). Checked here, so every sampler rejects a bad value the same way."""
    value = noise_scale if noise_scale is not None else recorded.get("noise_scale")
    value = 1.0 if value is None else value
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.5 <= value <= 2):
        raise DreamLiteError(f"noise_scale must be a number in [0.5, 2], got {value!r}")
    return float(value)


def carry_noise(v, x, sigma: float, sigma_next: float, noise_scale: float):
    """The velocity whose Euler step lands where a DDIM step with the predicted noise scaled by `noise_scale` does.

    A rectified-flow step from x at level sigma splits x into the predicted clean latent x0 = x - sigma*v and
    noise e = x + (1 - sigma)*v, and puts them back together at the next level: (1 - s')*x0 + s'*e. Scaling e
    there (the epsilon scaling of Ning et al., 2024, which corrects the exposure bias of the sampler) leaves a
    sample noisier than its schedule says, so the model commits to more structure: on the Shapes models fewer
    empty canvases, but more objects than the prompt asks for (docs/results.md). At 1 it returns `v` unchanged.
    Works on numpy arrays and tensors alike."""
    if noise_scale == 1:
        return v
    target = (1 - sigma_next) * (x - sigma * v) + sigma_next * noise_scale * (x + (1 - sigma) * v)
    return (target - x) / (sigma_next - sigma)


def is_guided(sigma, max_sigma: float):
    """Whether a step at noise level `sigma` (a float, or a tensor of per-row levels) lies in the guidance
    interval. The tolerance absorbs float32 round trips of the scheduler's sigmas."""
    return sigma <= max_sigma + 1e-6


def step_scales(sigma: float, guidance: float, image_guidance: float, max_sigma: float) -> tuple[float, float]:
    """The (text, image) scales of one step: guidance in a limited interval (Kynkaanniemi et al., 2024).

    Above `max_sigma` the scales are 1, so the step takes the conditional prediction alone, and costs one branch.
    At high noise the sampler decides the layout. Guidance against the empty prompt there pushes away from
    scenes that have several objects, so objects go missing. Below it guidance sharpens shapes and colours."""
    return (guidance, image_guidance) if is_guided(sigma, max_sigma) else (1.0, 1.0)


def recorded_guidance(folder: str | None) -> dict:
    """The guidance defaults a model folder's `model_index.json` sets (only those that are set)."""
    path = os.path.join(folder, "model_index.json") if folder else ""
    if not (path and os.path.isfile(path)):
        return {}
    with open(path) as f:
        index = json.load(f)
    return {k: float(index[k]) for k in RECORDED_KEYS if index.get(k) is not None}


def training_guidance(guidance: float, image_guidance: float, init: str | None) -> tuple[float, float, float]:
    """(text, image, max sigma) a post-training stage samples with: the configured scales, where 0 stands for the
    init model's own default, and the init model's guidance interval, so that ReFL trajectories and DMD2's real
    score follow the model as it is used."""
    recorded = recorded_guidance(init)
    return (*resolve_guidance(recorded, guidance or None, image_guidance or None), resolve_max_sigma(recorded))


def guidance_branches(mode: str, task: str, guidance: float = DEFAULT_GUIDANCE,
                      image_guidance: float = DEFAULT_IMAGE_GUIDANCE) -> tuple[str, ...]:
    """The U-Net branches one sampling step needs, in batch order: a subset of ("uncond", "image", "text").

    Mobile mode and a scale of 1 need no unconditional branch: at 1, CFG's extrapolation is the conditional
    prediction itself, so evaluating the other branch only doubles the cost."""
    if mode == "mobile":
        return ("text",)
    if task == "generate":
        return ("text",) if guidance == 1 else ("uncond", "text")
    if image_guidance == 1:
        return ("text",) if guidance == 1 else ("image", "text")
    return ("uncond", "image", "text")


def reads_negatives(branches: tuple[str, ...]) -> bool:
    """Whether a branch layout needs the negative (empty-prompt) embeddings: every branch but "text" reads them."""
    return any(b != "text" for b in branches)


def combine_guidance(v: dict, guidance: float, image_guidance: float):
    """CFG over the branches present: uncond -> image by the image scale, image (or uncond) -> text by the text
    scale (InstructPix2Pix's dual guidance; a missing branch is one whose scale is 1)."""
    if "image" in v:
        base = v["image"] if "uncond" not in v else v["uncond"] + image_guidance * (v["image"] - v["uncond"])
        return base + guidance * (v["text"] - v["image"])
    if "uncond" in v:
        return v["uncond"] + guidance * (v["text"] - v["uncond"])
    return v["text"]
