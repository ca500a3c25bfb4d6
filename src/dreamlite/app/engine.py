"""What the web app does, without any web code: load models, cache prompt embeddings, sample under one lock.

Kept apart from the Gradio layout so the behaviour (validation, caching, queueing) is plain Python that the
UI, the API endpoints and the tests all share.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from ..errors import DreamLiteError
from ..guidance import DEFAULT_STEPS, resolve_steps

DEFAULT_MAX_SIDE = 1024  # a CPU laptop takes minutes per image beyond this; the pipeline itself allows 4096
EMBED_CACHE_SIZE = 128
MAX_IMAGES = 4


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    mode: str
    steps: int
    resolution: int
    unet_parameters: int
    text_encoder: str | None
    guidance: float  # the model's default text / image guidance (base mode)
    image_guidance: float

    def markdown(self) -> str:
        encoder = self.text_encoder or "none (pre-computed embeddings only)"
        return (f"**{self.name}** · mode `{self.mode}` · {self.steps} steps by default · "
                f"U-Net {self.unet_parameters / 1e6:.2f}M parameters · {self.resolution} px · text encoder {encoder}")


def find_models(model: str | None = None, models_dirs: Sequence[str] = ()) -> list[str]:
    """The picker's choices: shipped model names, then local model folders (given directly or found one level
    inside `models_dirs`), without duplicates."""
    from ..models.registry import shipped_models

    choices = list(shipped_models())
    if model is not None and model not in choices:
        choices.append(os.fspath(model))
    for directory in models_dirs:
        if not os.path.isdir(directory):
            raise DreamLiteError(f"models folder not found: {directory}")
        for entry in sorted(os.listdir(directory)):
            path = os.path.join(directory, entry)
            if os.path.isfile(os.path.join(path, "model_index.json")) and path not in choices:
                choices.append(path)
    return choices


def whole_number(value, what: str) -> int:
    """A form field that must be a whole number (sizes, seeds, steps, image counts): NaN, text and fractions are
    the user's mistake, not the server's."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DreamLiteError(f"the {what} must be a whole number, got {value!r}") from None
    if not number.is_integer():  # also NaN and infinity
        raise DreamLiteError(f"the {what} must be a whole number, got {value!r}")
    return int(number)


def check_app_size(height, width, max_side: int):
    """The pipeline's size rules plus the app's own (lower) ceiling, with messages a form user understands."""
    from ..pipeline import check_size

    height, width = whole_number(height, "height in pixels"), whole_number(width, "width in pixels")
    for name, side in (("height", height), ("width", width)):
        if side > max_side:
            raise DreamLiteError(f"{name} {side} is too large: the app allows at most {max_side} px a side")
    check_size(height, width)
    return height, width


def pick_seed(seed, randomize: bool) -> int:
    if randomize or seed is None:
        return random.randrange(2**31)
    seed = whole_number(seed, "seed")
    if not 0 <= seed < 2**63:
        raise DreamLiteError(f"the seed must be between 0 and 2^63-1, got {seed}")
    return seed


def _check_prompt(prompt, what: str = "prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise DreamLiteError(f"the {what} is empty: type what you want")
    return prompt.strip()


class Engine:
    """One loaded pipeline at a time, an LRU cache of prompt embeddings, and a lock so requests never overlap.

    Gradio's queue already runs one sampling event at a time; the lock also covers callers that bypass it
    (tests, or code that imports the engine directly).
    """

    def __init__(self, model: str | None = None, models_dirs: Sequence[str] = (), max_side: int = DEFAULT_MAX_SIDE):
        from ..models.registry import default_model

        if model is None:
            found = find_models(None, models_dirs)
            model = found[0] if found else default_model()  # default_model() raises the "no model yet" error
        self.default = os.fspath(model)
        self.models_dirs = tuple(models_dirs)
        self.max_side = int(max_side)
        self.lock = threading.Lock()
        self._loaded: tuple[str, object] | None = None
        self._infos: dict[str, ModelInfo] = {}
        self._cache: OrderedDict[tuple, dict] = OrderedDict()
        self.encoder_calls = 0  # prompts that went through the text encoder (cache misses)
        self.cache_hits = 0

    # ------------------------------------------------------------------ models
    def choices(self) -> list[str]:
        return find_models(self.default, self.models_dirs)

    def pipeline(self, model: str | None = None):
        """The pipeline for `model` (a shipped name or folder), loading it if another one is loaded."""
        from ..models.registry import resolve_model
        from ..pipeline import DreamLitePipeline

        model = self.default if model in (None, "") else os.fspath(model)
        path = os.path.abspath(resolve_model(model))
        if self._loaded is None or self._loaded[0] != path:
            self._loaded = None  # free the previous model before loading the next
            pipe = DreamLitePipeline.from_pretrained(path)
            pipe.set_progress_bar_config(disable=True)
            self._loaded = (path, pipe)
        return self._loaded[1]

    def info(self, model: str | None = None) -> ModelInfo:
        from ..models.presets import count_parameters

        model = self.default if model in (None, "") else os.fspath(model)
        if model not in self._infos:
            with self.lock:
                pipe = self.pipeline(model)
                path = self._loaded[0]
            encoder = pipe.config.text_encoder_name or (pipe.text_encoder.config.model_type if pipe.text_encoder else None)
            self._infos[model] = ModelInfo(
                name=os.path.basename(os.path.normpath(model)), path=path, mode=pipe.config.mode,
                steps=DEFAULT_STEPS[pipe.config.mode], resolution=pipe.default_resolution,
                unet_parameters=count_parameters(pipe.unet), text_encoder=encoder,
                guidance=pipe.default_guidance, image_guidance=pipe.default_image_guidance,
            )
        return self._infos[model]

    # ------------------------------------------------------------------ conditioning
    def conditioning(self, pipe, prompt: str, task: str, image: Image.Image | None = None,
                     negative_prompt: str | None = None, negatives: bool = False) -> dict:
        """`prompt_embeds` (+ masks, + negatives when guiding or when `negatives`) for one prompt, from the cache
        when possible.

        Qwen3-VL edit embeddings also see the source image, so its hash is part of their key."""
        if pipe.text_encoder is None:
            raise DreamLiteError("this model has no text encoder, so the app cannot encode prompts")
        do_cfg = pipe.config.mode == "base" or negatives
        image_key = None
        images = None
        if task == "edit":
            images = [image]
            if pipe.text_encoder.config.model_type == "qwen3_vl":
                image_key = hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()
        key = (self._loaded[0], do_cfg, task, prompt, negative_prompt or "", image_key)
        if key in self._cache:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return self._cache[key]
        embeds, mask, neg, neg_mask = pipe.encode_prompt([prompt], task, images, negative_prompt, do_cfg)
        self.encoder_calls += 1
        entry = {"prompt_embeds": embeds, "prompt_embeds_mask": mask}
        if neg is not None:
            entry.update(negative_prompt_embeds=neg, negative_prompt_embeds_mask=neg_mask)
        self._cache[key] = entry
        while len(self._cache) > EMBED_CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry

    # ------------------------------------------------------------------ sampling
    def generate(self, prompt, *, model=None, width=None, height=None, steps=None, guidance=None, seed=0,
                 randomize_seed=False, num_images=1, negative_prompt=None,
                 progress: Callable[[int, int], None] | None = None) -> list[tuple[Image.Image, int]]:
        """(image, seed) pairs; image i uses seed+i, as the CLI does."""
        from ..pipeline import generators_from_seeds

        prompt = _check_prompt(prompt)
        num_images = whole_number(num_images, "number of images")
        if not 1 <= num_images <= MAX_IMAGES:
            raise DreamLiteError(f"number of images must be between 1 and {MAX_IMAGES}, got {num_images}")
        seed = pick_seed(seed, randomize_seed)
        with self.lock:
            pipe = self.pipeline(model)
            height = pipe.default_resolution if height in (None, 0) else height
            width = pipe.default_resolution if width in (None, 0) else width
            height, width = check_app_size(height, width, self.max_side)
            steps = _steps(steps, pipe)
            cond = self.conditioning(pipe, prompt, "generate", None, negative_prompt)
            images = pipe(
                height=height, width=width, num_inference_steps=steps, guidance_scale=guidance,
                num_images_per_prompt=num_images, generator=generators_from_seeds(range(seed, seed + num_images)),
                callback_on_step_end=_step_callback(progress), **cond,
            ).images
        return [(im, seed + i) for i, im in enumerate(images)]

    def edit(self, image: Image.Image, instruction, *, model=None, steps=None, guidance=None, image_guidance=None,
             seed=0, randomize_seed=False, negative_prompt=None, strength=1.0, keep_outside=False,
             progress: Callable[[int, int], None] | None = None) -> tuple[Image.Image, int]:
        """Edit at the source's size (floored to 16 px); sources were already fitted to the app's ceiling.
        `strength` < 1 starts from the noised source (fewer steps, more of the source kept); `keep_outside` holds
        the source outside the region the model's own contrast marks as edited (`mask_image="auto"`)."""
        from ..image_io import to_rgb
        from ..pipeline import check_strength, generators_from_seeds

        if image is None:
            raise DreamLiteError("there is no image to edit: upload one, or pick one from the Generate tab")
        instruction = _check_prompt(instruction, "instruction")
        strength = 1.0 if strength is None else float(strength)
        check_strength(strength, "edit")
        image = fit_source(to_rgb(image), self.max_side)
        seed = pick_seed(seed, randomize_seed)
        with self.lock:
            pipe = self.pipeline(model)
            steps = _steps(steps, pipe)
            cond = self.conditioning(pipe, instruction, "edit", image, negative_prompt, negatives=bool(keep_outside))
            out = pipe(
                image=image, num_inference_steps=steps, guidance_scale=guidance, image_guidance_scale=image_guidance,
                strength=strength, generator=generators_from_seeds([seed]), mask_image="auto" if keep_outside else None,
                callback_on_step_end=_step_callback(progress), **cond,
            ).images[0]
        return out, seed


def fit_source(image: Image.Image, max_side: int) -> Image.Image:
    """Large uploads are scaled down to the app's ceiling (aspect kept); tiny ones are refused."""
    if min(image.size) < 16:
        raise DreamLiteError(f"the image is {image.width}x{image.height}: it must be at least 16 px a side")
    if max(image.size) > max_side:
        k = max_side / max(image.size)
        image = image.resize((max(16, round(image.width * k)), max(16, round(image.height * k))), Image.LANCZOS)
    return image


def _steps(steps, pipe) -> int:
    """The UI's 0 (or nothing) means the model's default; a web request is capped at 200 steps."""
    steps = resolve_steps(pipe.config.mode, None if steps in (None, 0) else whole_number(steps, "number of steps"))
    if steps > 200:
        raise DreamLiteError(f"steps must be between 1 and 200, got {steps}")
    return steps


def _step_callback(progress):
    if progress is None:
        return None

    def callback(pipe, i, t, tensors):
        progress(i + 1, pipe.num_timesteps)  # the steps actually run: fewer for edits with strength < 1

    return callback
