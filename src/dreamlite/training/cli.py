"""`dreamlite train`: a whole recipe, or one stage from a YAML config, with `key=value` overrides."""

from __future__ import annotations

import argparse

from ..errors import DreamLiteError


def cmd_train(args):
    from .recipes import RECIPES, run_recipe

    if bool(args.recipe) == bool(args.config):
        raise DreamLiteError(f"give --recipe ({' | '.join(RECIPES)}) or --config FILE, not both or neither")
    if args.resume not in (None, "latest") and args.recipe:
        raise DreamLiteError("a recipe resumes with --resume latest (each stage from its newest checkpoint)")
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


def register(sub: argparse._SubParsersAction):
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
