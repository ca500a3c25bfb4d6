"""`dreamlite train`: a whole recipe, or one stage from a YAML config, with `key=value` overrides."""

from __future__ import annotations

import argparse
import os

from ..errors import DreamLiteError


def cmd_train(args):
    from .recipes import RECIPES, run_recipe

    if bool(args.recipe) == bool(args.config):
        raise DreamLiteError(f"give --recipe ({' | '.join(RECIPES)}) or --config FILE, not both or neither")
    if args.resume not in (None, "latest") and args.recipe:
        raise DreamLiteError("a recipe resumes with --resume latest (each stage from its newest checkpoint)")
    args.init, args.vae = _model_folder("--init", args.init), _model_folder("--vae", args.vae)
    if args.recipe:
        model = run_recipe(args.recipe, args.preset, args.out, args.overrides, args.resume, vae=args.vae,
                           progress=not args.no_progress, init=args.init)
    else:
        from .config import load_config
        from .posttrain import build_trainer

        overrides = list(args.overrides) + ([f"vae={args.vae}"] if args.vae else []) + ([f"init={args.init}"] if args.init else [])
        model = build_trainer(load_config(args.config, overrides), args.out, resume=args.resume,
                              progress=not args.no_progress).train()
    print(model)


def _model_folder(flag: str, value: str | None) -> str | None:
    """A model folder or shipped name given to start from, checked before any stage runs."""
    if value is None:
        return None
    from ..models.registry import resolve_model

    folder = resolve_model(value)
    if flag == "--init" and not os.path.isdir(os.path.join(folder, "unet")):
        raise DreamLiteError(f"--init {value}: no unet/ folder in {folder}")
    vae_alone = os.path.isfile(os.path.join(folder, "config.json"))  # an AutoencoderTiny folder itself
    if flag == "--vae" and not (os.path.isdir(os.path.join(folder, "vae")) or vae_alone):
        raise DreamLiteError(f"--vae {value}: no vae/ folder in {folder}")
    return folder


def cmd_train_reward(args):
    import json

    from .rewards import train_shapes_reward

    metrics = train_shapes_reward(args.task, args.out, steps=args.steps, size=args.size, batch_size=args.batch_size,
                                  lr=args.lr, seed=args.seed, eval_pairs=args.eval_pairs, progress=not args.no_progress)
    print(json.dumps(metrics["held_out_accuracy"]))
    print(args.out)


def register(sub: argparse._SubParsersAction):
    p = sub.add_parser(
        "train-reward", help="train a Shapes reward model (for ReFL)",
        description="Train the built-in Shapes reward for one task on (correct, perturbed) render pairs and write it "
                    "to --out (safetensors + config + reward_metrics.json with held-out ranking accuracy).")
    p.add_argument("--task", required=True, choices=("generate", "edit"))
    p.add_argument("--out", required=True, help="output folder (pass it to ReFL as feedback.<task>_reward=DIR)")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (the model's resolution)")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per step, a multiple of 4")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-pairs", type=int, default=512, help="held-out pairs for the ranking accuracy")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train_reward)

    p = sub.add_parser(
        "train", help="train a recipe or one stage",
        description="Train DreamLite. `--recipe tpj` runs the task-progressive pretraining (vae, t2i, edit, joint), "
                    "each stage starting from the previous one; `--config FILE` runs one stage. Overrides are "
                    "`section.key=value` (e.g. optim.lr=1e-4); in a recipe, `t2i.optim.steps=100` targets one stage.")
    p.add_argument("--recipe", default=None, help="tpj | t2i-joint (pretraining); sft | refl | dmd2 (post-training, with --init)")
    p.add_argument("--init", default=None, help="model folder to start from (post-training recipes, or one stage)")
    p.add_argument("--config", default=None, help="one stage's YAML config")
    p.add_argument("--preset", default="tiny", help="preset whose stage configs a recipe uses (default tiny)")
    p.add_argument("--out", default="runs/dreamlite", help="output folder (default runs/dreamlite)")
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder: continue exactly")
    p.add_argument("--vae", default=None, help="use this trained VAE (model folder or AutoencoderTiny folder), skip the vae stage")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.csv)")
    p.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    p.set_defaults(func=cmd_train)
