"""Recipes: ordered training stages, each a YAML config, each starting from the previous stage's weights.

`tpj` is DreamLite's task-progressive joint pretraining (VAE, then text-to-image, then editing, then both);
`t2i-joint` skips the editing-only stage (the paper's Table 2 ablation). A recipe run writes one folder per
stage under `--out` (`<out>/<stage>/model` is that stage's model folder) and a `recipe.json` with the wall
time and step count of every stage and the wall time since the recipe was first launched. A finished stage is skipped when the recipe is run again, so one
`--resume latest` continues an interrupted recipe exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import time

from ..atomic import write_text_atomic
from ..errors import DreamLiteError
from .checkpoint import list_checkpoints
from .config import STAGES, TrainConfig, load_config

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")

RECIPES: dict[str, tuple[str, ...]] = {
    "tpj": ("vae", "t2i", "edit", "joint"),
    "t2i-joint": ("vae", "t2i", "joint"),
    # Post-training, each from a finished model (`--init DIR`): supervised fine-tuning, reward feedback
    # learning (needs reward folders: `feedback.generate_reward=DIR feedback.edit_reward=DIR`), distillation.
    "sft": ("sft",),
    "refl": ("refl",),
    "dmd2": ("dmd2",),
}


def stage_config_path(preset: str, stage: str) -> str:
    path = os.path.join(CONFIG_DIR, f"{preset}-{stage}.yaml")
    if not os.path.isfile(path):
        have = sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml"))
        raise DreamLiteError(f"no config for preset {preset!r} stage {stage!r} (shipped configs: {', '.join(have)})")
    return path


def split_overrides(overrides: list[str], stages) -> tuple[list[str], dict[str, list[str]]]:
    """`optim.lr=1e-4` applies to every stage; `t2i.optim.steps=10` to the t2i stage only."""
    common, per_stage = [], {s: [] for s in stages}
    for item in overrides:
        head = item.split(".", 1)[0]
        if head in STAGES and "." in item.split("=", 1)[0]:
            if head not in per_stage:
                raise DreamLiteError(f"override {item!r} names stage {head!r}, which this recipe does not run")
            per_stage[head].append(item.split(".", 1)[1])
        else:
            common.append(item)
    return common, per_stage


def stage_finished(stage_dir: str, stage: str) -> bool:
    marker = os.path.join(stage_dir, "model", "vae" if stage == "vae" else "model_index.json")
    return os.path.exists(marker)


def plan(recipe: str, preset: str, out: str, overrides: list[str], vae: str | None = None,
         init: str | None = None) -> list[tuple[str, str, TrainConfig]]:
    """(stage, stage folder, validated config) for every stage, so a typo fails before any training starts."""
    if recipe not in RECIPES:
        raise DreamLiteError(f"unknown recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
    stages = [s for s in RECIPES[recipe] if not (vae and s == "vae")]
    common, per_stage = split_overrides(overrides, RECIPES[recipe])
    if stages[0] in ("sft", "refl", "dmd2") and not init:
        raise DreamLiteError(f"recipe {recipe!r} post-trains a finished model: pass --init MODEL_DIR")
    steps, previous = [], None
    vae_dir = vae
    for stage in stages:
        stage_dir = os.path.join(out, stage)
        chained = []
        if stage != "vae":
            if vae_dir:
                chained.append(f"vae={vae_dir}")
            if previous not in (None, "vae"):
                chained.append(f"init={os.path.join(out, previous, 'model')}")
            elif init:
                chained.append(f"init={init}")
        cfg = load_config(stage_config_path(preset, stage), [*chained, *common, *per_stage[stage]])
        if cfg.stage != stage:
            raise DreamLiteError(f"{stage_config_path(preset, stage)} declares stage {cfg.stage!r}, expected {stage!r}")
        steps.append((stage, stage_dir, cfg))
        if stage == "vae":
            vae_dir = os.path.join(stage_dir, "model")
        previous = stage
    return steps


def run_recipe(recipe: str, preset: str, out: str, overrides: list[str] | None = None, resume: str | None = None,
               vae: str | None = None, progress: bool = True, init: str | None = None) -> str:
    """Run every stage in order; returns the last stage's model folder."""
    from .posttrain import build_trainer

    steps = plan(recipe, preset, out, overrides or [], vae, init)
    log_path = os.path.join(out, "recipe.json")
    log = _read_json(log_path) or {"recipe": recipe, "preset": preset, "stages": {}}
    names = log["recipe"].split(", ")  # several recipes into one folder (sft, refl, dmd2): name them all
    if recipe not in names:
        log["recipe"] = ", ".join(names + [recipe])
    log.setdefault("started_at", time.time())  # first launch: wall time spans restarts and resumes
    for stage, stage_dir, cfg in steps:
        if stage_finished(stage_dir, stage):
            print(f"[{recipe}] {stage}: finished earlier, skipped ({os.path.join(stage_dir, 'model')})")
            continue
        partial = bool(list_checkpoints(os.path.join(stage_dir, "checkpoints")))
        if partial and not resume:
            raise DreamLiteError(f"{stage_dir} holds checkpoints of an unfinished run: pass --resume latest to continue it")
        print(f"[{recipe}] {stage}: {cfg.optim.steps} steps -> {stage_dir}")
        start = time.time()
        build_trainer(cfg, stage_dir, resume=resume if partial else None, progress=progress).train()
        entry = log["stages"].setdefault(stage, {"seconds": 0.0})
        entry["seconds"] = round(entry["seconds"] + time.time() - start, 1)
        entry["steps"] = cfg.optim.steps
        log["total_seconds"] = round(sum(e["seconds"] for e in log["stages"].values()), 1)
        log["wall_seconds_since_start"] = round(time.time() - log["started_at"], 1)
        write_text_atomic(log_path, json.dumps(log, indent=2))
    return os.path.join(steps[-1][1], "model")


def _read_json(path):
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return None
