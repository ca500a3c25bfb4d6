"""The `dreamlite` command: each subcommand parses arguments and calls the library.

Errors a user can cause (bad image, bad size, unknown model, ...) are `DreamLiteError`s: they print one
line to stderr and exit with status 2, and no output file is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import DreamLiteError

EXIT_USER_ERROR = 2


# ---------------------------------------------------------------------------------------------- helpers
def output_paths(out: str, n: int) -> list[str]:
    """OUT.png for one image, OUT-0.png ... OUT-(n-1).png for several."""
    if n == 1:
        return [out]
    stem, ext = os.path.splitext(out)
    return [f"{stem}-{i}{ext or '.png'}" for i in range(n)]


def _check_output(path: str):
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
        raise DreamLiteError(f"output must be an image file (.png, .jpg, .webp), got {path!r}")
    _check_writable(path)


def _check_writable(path: str):
    """Checked before any model loads or samples: the path is no folder, and its folder exists or can be made."""
    if os.path.isdir(path):
        raise DreamLiteError(f"output {path!r} is a folder; name a file")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):  # checked before sampling: the folders are made only when the image is written
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise DreamLiteError(f"cannot write {path!r}: {parent} is not a writable folder")


def _load_pipeline(model: str | None):
    from .pipeline import DreamLitePipeline

    pipe = DreamLitePipeline.from_pretrained(model)
    pipe.set_progress_bar_config(desc="sampling", leave=False)
    return pipe


def _load_embeds(path: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise DreamLiteError(f"embeddings file not found: {path}")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise DreamLiteError(f"cannot read embeddings {path}: {str(e).splitlines()[0]}") from None
    if "prompt_embeds" not in tensors:
        raise DreamLiteError(f"{path} has no 'prompt_embeds' tensor (write it with `dreamlite encode`)")
    return tensors


def _sample(args, image=None, mask_image=None):
    from .guidance import resolve_noise_scale
    from .image_io import save_image_atomic
    from .pipeline import check_size, check_strength, generators_from_seeds

    if args.prompt is None and args.embeds is None:
        raise DreamLiteError("give a prompt or --embeds FILE")
    paths = output_paths(args.output, args.num_images)
    for p in paths:
        _check_output(p)
    size = {}
    if args.height is not None or args.width is not None:
        height = args.height if args.height is not None else args.width
        width = args.width if args.width is not None else args.height
        size = {"height": height, "width": width}
        check_size(**size)  # before the (slow) model load
    if args.num_images < 1:
        raise DreamLiteError(f"--num-images must be at least 1, got {args.num_images}")
    strength = getattr(args, "strength", 1.0)  # an edit option; generation always starts from pure noise
    check_strength(strength, "generate" if image is None else "edit")
    if args.noise_scale is not None:
        resolve_noise_scale({}, args.noise_scale)  # before the (slow) model load
    pipe = _load_pipeline(args.model)
    embeds = {}
    if args.embeds is not None:
        tensors = _load_embeds(args.embeds)
        embeds = {k: tensors[k] for k in tensors if k.startswith(("prompt_embeds", "negative_prompt_embeds"))}
    result = pipe(
        prompt=None if embeds else args.prompt,
        image=image,
        negative_prompt=args.negative_prompt,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        image_guidance_scale=getattr(args, "image_guidance", None),
        guidance_max_sigma=args.guidance_max_sigma,
        noise_scale=args.noise_scale,
        num_images_per_prompt=args.num_images,
        generator=generators_from_seeds(range(args.seed, args.seed + args.num_images)),
        **size,
        strength=strength,
        **({} if mask_image is None else {"mask_image": mask_image}),
        **embeds,
    )
    for im, path in zip(result.images, paths):
        save_image_atomic(im, path)
        print(path)


# ---------------------------------------------------------------------------------------------- commands
def cmd_generate(args):
    _sample(args)


def cmd_edit(args):
    from .image_io import load_image

    source = load_image(args.source)
    mask = args.mask if args.mask in (None, "auto") else load_image(args.mask).convert("L")
    _sample(args, image=source, mask_image=mask)


def cmd_encode(args):
    """Pre-compute the conditioning once; the pipeline then skips the text encoder (the on-device setting)."""
    from safetensors.torch import save_file

    from .atomic import atomic_path
    from .image_io import load_image

    if not args.output.endswith(".safetensors"):
        raise DreamLiteError(f"output must be a .safetensors file, got {args.output!r}")
    if not args.prompt.strip():
        raise DreamLiteError("the prompt is empty")
    _check_writable(args.output)
    image = load_image(args.image) if args.image else None
    pipe = _load_pipeline(args.model)
    if pipe.text_encoder is None:
        raise DreamLiteError("this model has no text encoder to encode with")
    images = None
    if args.task == "edit":
        if image is None and pipe.text_encoder.config.model_type == "qwen3_vl":
            raise DreamLiteError("Qwen3-VL edit embeddings depend on the source image: pass --image SOURCE")
        images = [image] if image is not None else None
    do_cfg = pipe.config.mode == "base" or args.task == "edit"  # edits also need the empty prompt for --mask auto
    embeds, mask, neg, neg_mask = pipe.encode_prompt([args.prompt], args.task, images, args.negative_prompt, do_cfg)
    tensors = {"prompt_embeds": embeds.contiguous(), "prompt_embeds_mask": mask.contiguous()}
    if neg is not None:
        tensors.update(negative_prompt_embeds=neg.contiguous(), negative_prompt_embeds_mask=neg_mask.contiguous())
    meta = {"prompt": args.prompt, "task": args.task, "mode": pipe.config.mode}
    with atomic_path(args.output) as tmp:
        save_file(tensors, tmp, metadata=meta)
    print(args.output)


def cmd_info(args):
    from .models.presets import build_unet, build_vae, count_parameters, get_preset

    if args.preset and args.model:
        raise DreamLiteError("give --preset or --model, not both")
    if args.preset:
        preset = get_preset(args.preset)
        unet, vae = build_unet(preset), build_vae(preset)
        info = {"preset": preset.name, "text_encoder": preset.text_encoder, "resolution": preset.resolution}
    else:
        pipe = _load_pipeline(args.model)
        unet, vae = pipe.unet, pipe.vae
        encoder = pipe.config.text_encoder_name or (pipe.text_encoder.config.model_type if pipe.text_encoder else None)
        info = {"model": args.model or "default", "mode": pipe.config.mode, "text_encoder": encoder,
                "resolution": pipe.default_resolution}
        if pipe.text_encoder is not None:
            info["text_encoder_parameters"] = count_parameters(pipe.text_encoder)
    info["unet_parameters"] = count_parameters(unet)
    info["unet_parameters_millions"] = round(info["unet_parameters"] / 1e6, 2)
    info["vae_parameters"] = count_parameters(vae)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>26}: {v}")


# ---------------------------------------------------------------------------------------------- parser
def _add_sampling_args(p: argparse.ArgumentParser):
    p.add_argument("-o", "--output", required=True, help="output image (several images get -0, -1, ... suffixes)")
    p.add_argument("--model", default=None, help="model folder or shipped model name (default: the shipped default)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default 28 base / 4 mobile)")
    p.add_argument("--guidance", type=float, default=None, help="text guidance scale, base mode (default: the model's, else 3.5)")
    p.add_argument("--guidance-max-sigma", type=float, default=None, help="guide only at steps whose noise level is at most this, in (0, 1] (default: the model's, else 1: every step)")
    p.add_argument("--noise-scale", type=float, default=None,
                   help="scale of the noise each sampling step carries on (epsilon scaling; default: the model's, else 1)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt, base mode")
    p.add_argument("--seed", type=int, default=0, help="seed of the first image; image i uses seed+i")
    p.add_argument("--height", type=int, default=None, help="multiple of 16 (default: model resolution)")
    p.add_argument("--width", type=int, default=None, help="multiple of 16 (default: model resolution)")
    p.add_argument("--num-images", type=int, default=1, help="images to sample")
    p.add_argument("--embeds", default=None, help="pre-computed embeddings from `dreamlite encode` (skips the text encoder)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamlite", description="DreamLite: generate and edit images; train, evaluate, deploy.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="text-to-image", description="Generate images from a prompt.")
    p.add_argument("prompt", nargs="?", help="what to draw")
    _add_sampling_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("edit", help="edit an image by instruction", description="Edit SOURCE following INSTRUCTION.")
    p.add_argument("source", help="source image (any PIL-readable format; converted to RGB)")
    p.add_argument("prompt", nargs="?", metavar="instruction", help="the edit instruction")
    _add_sampling_args(p)
    p.add_argument("--image-guidance", type=float, default=None, help="image guidance scale, base mode (default: the model's, else 1.5)")
    p.add_argument("--strength", type=float, default=1.0, help="start from the source noised to this level, in (0, 1]: lower keeps more of the source (default 1: from pure noise)")
    p.add_argument("--mask", default=None, metavar="auto|FILE",
                   help="keep the source latent outside a region: 'auto' estimates where the instruction acts (DiffEdit), "
                        "or an image, white where the edit may change the source, resized to the output as the source is "
                        "(default: none, the paper's sampler)")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("encode", help="pre-compute prompt embeddings", description="Write prompt embeddings + masks to safetensors.")
    p.add_argument("prompt")
    p.add_argument("-o", "--output", required=True, help="EMBEDS.safetensors")
    p.add_argument("--task", choices=("generate", "edit"), default="generate")
    p.add_argument("--image", default=None, help="source image (edit task with Qwen3-VL)")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("info", help="parameter counts of a preset or model", description="Describe a preset or a model.")
    p.add_argument("--preset", default=None, help="paper or tiny")
    p.add_argument("--model", default=None, help="model folder or shipped name")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    for _, register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Commands owned by other modules (data, training, evaluation, deployment) register themselves here."""
    import importlib

    for module in ("dreamlite.data.cli", "dreamlite.eval.cli", "dreamlite.training.cli", "dreamlite.deploy.cli",
                   "dreamlite.app.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(module.rsplit(".", 1)[0]) and e.name in (module, module.rsplit(".", 1)[0]):
                continue
            raise
        yield module, mod.register


def _quiet_libraries():
    """Library warnings (config keys diffusers itself writes, load reports) are noise for CLI users."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # its load errors are raised too, and reported once
    diffusers_logging.disable_progress_bar()  # loading bars; the sampling bar stays
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        args.func(args)
    except DreamLiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
