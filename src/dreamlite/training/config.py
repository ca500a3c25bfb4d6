"""Training configuration: plain dataclasses read from small YAML files, overridable as `section.key=value`.

A key that the dataclasses do not define is an error (with a suggestion), never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field

import yaml

from ..atomic import write_text_atomic
from ..errors import DreamLiteError

STAGES = ("vae", "t2i", "edit", "joint", "sft", "refl", "dmd2")  # the last three: post-training (posttrain.py)


@dataclass
class DataConfig:
    source: str = "shapes"  # shapes | webdataset | imagefolder
    path: str | None = None  # shards (folder/glob/brace) or image folder, for the non-shapes sources
    task: str = "t2i"  # shapes task mix: t2i | edit | joint
    edit_fraction: float = 0.5  # share of edit samples in the joint mix
    size: int = 128
    seed: int = 0
    num_workers: int = 0


@dataclass
class OptimConfig:
    steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 100
    lr_schedule: str = "constant_with_warmup"  # any diffusers.optimization schedule name
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0 disables the EMA
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"  # no | fp16 | bf16 (GPU)
    seed: int = 0


@dataclass
class ObjectiveConfig:
    logit_mean: float = 0.0  # logit-normal timestep sampling
    logit_std: float = 1.0
    shift: float = 1.0  # sigma -> shift*sigma / (1 + (shift-1)*sigma); > 1 favours noisier timesteps
    drop_text: float = 0.1  # condition dropout for guidance (InstructPix2Pix scheme, disjoint events)
    drop_image: float = 0.1
    drop_both: float = 0.1
    conditioning: str = "spatial"  # spatial (DreamLite, width concat) | channel (Pix2Pix-style), for ablations
    # What the U-Net sees of a generation row: "in_context", the paper's (noisy target | zeros) canvas that
    # sampling uses, or "target", the noisy target alone. The zeros half carries nothing to learn, so "target"
    # trains text-to-image at about half the U-Net's cost; t2i stage only (every row generates, later stages and
    # sampling see the in-context canvas, and a fully convolutional U-Net with no positional embedding runs on both).
    canvas: str = "in_context"
    # Loss weight of the target cells an edit leaves unchanged (source visible): > 1 is an explicit copy signal.
    keep_weight: float = 1.0
    # Decoder fine-tuning (vae stage, frozen encoder): the decoder sees latents + s * noise, s ~ U(0, latent_noise)
    # in the model's normalised units, so it learns to turn the U-Net's imprecise latents into clean images.
    latent_noise: float = 0.0
    # VAE from scratch: weight of a term asking the first three raw latent channels to equal the image's RGB,
    # average-pooled to the latent grid. Reconstruction alone may put distinct colours close together in latent
    # space, where the flow's noise drowns their difference early; this ties colour distances to pixel ones.
    colour_weight: float = 0.0
    # The same for shape: weight of a term asking the two raw latent channels after the colour ones to equal each
    # shape's code (five points on a unit circle), coverage-weighted and pooled to the latent grid. A star and a
    # circle of a few latent cells otherwise differ only in fine detail, which the flow's noise drowns early.
    shape_weight: float = 0.0
    # VAE stages: reconstruction loss = MSE + l1_weight * L1. L1 pushes every wrong pixel equally hard, however
    # small its error, so low-contrast objects (white on beige) might count for more than under MSE alone; weight 1
    # made a 1,200-step VAE far worse (docs/results.md, "The VAE's round trip"), so the default stays 0.1.
    l1_weight: float = 0.1


@dataclass
class LogConfig:
    every: int = 10
    checkpoint_every: int = 250
    keep: int = 2


@dataclass
class SFTConfig:
    """Curated Shapes subset for supervised fine-tuning (data.source=shapes; see data/curation.py)."""

    categories: list = field(default_factory=lambda: ["counting", "position", "color_attr", "two_object", "dense"])
    edit_types: list = field(default_factory=lambda: ["add", "remove", "replace", "adjust", "background", "action",
                                                      "style", "extract", "compose"])  # drawn uniformly: balanced
    edit_fraction: float = 0.5


@dataclass
class ReFLConfig:
    """Reward feedback learning on rectified flow (training/refl.py)."""

    generate_reward: str | None = None  # reward folder (Shapes reward, or hpsv3:DIR)
    edit_reward: str | None = None  # reward folder (Shapes edit reward, or editreward:DIR)
    weight: float = 0.01  # reward loss = -weight * score
    every: int = 1  # add the reward loss every N micro-batches; the flow loss is always on
    num_steps: int = 20  # sampling trajectory length (no gradients)
    stop_min: float = 0.6  # stop at a random step in [stop_min, stop_max) of the trajectory
    stop_max: float = 1.0
    guidance: float = 0.0  # trajectory CFG; 0: the init model's own default (its model_index.json, else 3.5)
    image_guidance: float = 0.0  # 0: the init model's own default (else 1.5)


@dataclass
class DMD2Config:
    """Distribution-matching distillation (training/dmd2.py) to a few-step, guidance-free generator."""

    num_steps: int = 4  # generator steps (the exported model runs them in mode=mobile)
    fake_steps: int = 5  # fake-score (+ GAN head) updates per generator update (two time-scale rule)
    fake_lr: float = 0.0  # 0: same as optim.lr
    guidance: float = 0.0  # real score: text CFG (generate) or text CFG + image CFG (edit); 0: the init model's
    image_guidance: float = 0.0  # own defaults, as it samples when used (its model_index.json, else 3.5 / 1.5)
    gan_weight: float = 0.003  # generator's non-saturating GAN loss weight
    disc_weight: float = 0.01  # fake score's classifier loss weight
    min_sigma: float = 0.02  # range of the re-noising level for the distribution-matching gradient
    max_sigma: float = 0.98


@dataclass
class TrainConfig:
    stage: str = "t2i"
    preset: str = "tiny"
    init: str | None = None  # folder of a previous stage (model folder) to start from
    vae: str | None = None  # folder with a trained VAE (a vae/ subfolder or an AutoencoderTiny folder)
    freeze_vae_encoder: bool = False  # vae stage: train the decoder only, so U-Nets trained on the latents stay valid
    unet_overrides: dict = field(default_factory=dict)  # preset U-Net config keys to change (micro configs)
    vae_overrides: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    log: LogConfig = field(default_factory=LogConfig)
    # Post-training sections (stages sft, refl, dmd2); named unlike the stages so that a recipe's
    # per-stage overrides (`sft.optim.lr=...`) stay unambiguous.
    curation: SFTConfig = field(default_factory=SFTConfig)
    feedback: ReFLConfig = field(default_factory=ReFLConfig)
    distill: DMD2Config = field(default_factory=DMD2Config)

    def validate(self) -> TrainConfig:
        if self.stage not in STAGES:
            raise DreamLiteError(f"unknown stage {self.stage!r}; expected one of {STAGES}")
        if self.data.source not in ("shapes", "webdataset", "imagefolder"):
            raise DreamLiteError(f"unknown data.source {self.data.source!r}")
        if self.data.source != "shapes" and not self.data.path:
            raise DreamLiteError(f"data.source={self.data.source} needs data.path")
        if self.objective.conditioning not in ("spatial", "channel"):
            raise DreamLiteError(f"objective.conditioning must be spatial or channel, got {self.objective.conditioning!r}")
        if self.objective.canvas not in ("in_context", "target"):
            raise DreamLiteError(f"objective.canvas must be in_context or target, got {self.objective.canvas!r}")
        if self.objective.canvas == "target" and (self.stage != "t2i" or self.objective.conditioning != "spatial"):
            raise DreamLiteError("objective.canvas=target trains generation on the target alone: stage t2i with "
                                 "spatial conditioning (edits need the in-context canvas)")
        if self.data.num_workers > 1 and self.log.checkpoint_every % self.data.num_workers:
            raise DreamLiteError("log.checkpoint_every must be a multiple of data.num_workers (exact resume)")
        for section, names in (("optim", ("steps", "batch_size", "grad_accum")), ("log", ("every", "checkpoint_every"))):
            for name in names:
                if getattr(getattr(self, section), name) < 1:
                    raise DreamLiteError(f"{section}.{name} must be >= 1")
        if self.log.keep < 0:
            raise DreamLiteError(f"log.keep must be >= 0, got {self.log.keep}")
        if not 0 <= self.data.edit_fraction <= 1:
            raise DreamLiteError(f"data.edit_fraction must be in [0, 1], got {self.data.edit_fraction}")
        from diffusers.optimization import SchedulerType

        schedules = tuple(s.value for s in SchedulerType)
        if self.optim.lr_schedule not in schedules:
            raise DreamLiteError(f"unknown optim.lr_schedule {self.optim.lr_schedule!r}; expected one of {schedules}")
        if self.optim.mixed_precision not in ("no", "fp16", "bf16"):
            raise DreamLiteError(f"optim.mixed_precision must be no, fp16 or bf16, got {self.optim.mixed_precision!r}")
        if self.objective.keep_weight < 0:
            raise DreamLiteError(f"objective.keep_weight must be >= 0, got {self.objective.keep_weight}")
        for name in ("latent_noise", "l1_weight"):
            if getattr(self.objective, name) < 0:
                raise DreamLiteError(f"objective.{name} must be >= 0, got {getattr(self.objective, name)}")
        for name in ("colour_weight", "shape_weight"):  # latent-space ties of the VAE stage
            weight = getattr(self.objective, name)
            if weight < 0:
                raise DreamLiteError(f"objective.{name} must be >= 0, got {weight}")
            if weight and not (self.stage == "vae" and not self.freeze_vae_encoder):
                raise DreamLiteError(f"objective.{name} shapes a VAE's latent space: stage vae with a trainable encoder")
        if self.objective.shape_weight and self.data.source != "shapes":
            raise DreamLiteError("objective.shape_weight needs scene labels: data.source=shapes")
        if self.objective.latent_noise and not (self.stage == "vae" and self.freeze_vae_encoder):
            raise DreamLiteError("objective.latent_noise applies to decoder fine-tuning: stage vae with freeze_vae_encoder")
        if self.objective.drop_text + self.objective.drop_image + self.objective.drop_both > 1:
            raise DreamLiteError("objective drop probabilities must sum to at most 1")
        if self.stage in ("sft", "refl", "dmd2"):
            from .posttrain import validate_posttrain

            validate_posttrain(self)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str):
        """The resolved config (file and overrides merged), so a run's folder says how to run it again."""
        plain = json.loads(json.dumps(self.to_dict()))  # tuples become lists, which safe YAML can write
        header = "# Resolved training config of this run: `dreamlite train --config <this file>` runs it again.\n"
        write_text_atomic(path, header + yaml.safe_dump(plain, sort_keys=False))


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise DreamLiteError(f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DreamLiteError(f"unknown config key {where + key!r}{hint}")
        default = fields[key].default_factory() if fields[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value, f"{where}{key}.")
        elif isinstance(default, tuple) or key == "betas":
            if not isinstance(value, (list, tuple)) or len(value) != len(fields[key].default):
                raise DreamLiteError(f"{where + key} must be a list of {len(fields[key].default)} numbers, got {value!r}")
            kwargs[key] = tuple(_coerce(v, d, where + key) for v, d in zip(value, fields[key].default))
        else:
            kwargs[key] = _coerce(value, fields[key].default, where + key)
    return cls(**kwargs)


def _coerce(value, default, key):
    """YAML reads `1e-3` as a string; numbers are converted to the field's type, anything else is an error."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise DreamLiteError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DreamLiteError(f"{key} must be a number, got {value!r}") from None
        if isinstance(default, int) and not number.is_integer():
            raise DreamLiteError(f"{key} must be an integer, got {value!r}")
        return int(number) if isinstance(default, int) else number
    return value


def _set(tree: dict, dotted: str, value):
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
        if not isinstance(tree, dict):
            raise DreamLiteError(f"cannot set {dotted!r}: {p!r} is not a section")
    tree[leaf] = value


def load_config(path: str | None = None, overrides: list[str] | None = None, base: dict | None = None) -> TrainConfig:
    """YAML file (optional) + `key.sub=value` overrides (values parsed as YAML) -> validated TrainConfig."""
    tree = dict(base or {})
    if path is not None:
        if not os.path.isfile(path):
            raise DreamLiteError(f"config file not found: {path}")
        with open(path) as f:
            try:
                loaded = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise DreamLiteError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise DreamLiteError(f"{path}: a config is a mapping of sections, got {type(loaded).__name__}")
        tree = _merge(tree, loaded)
    for item in overrides or []:
        if "=" not in item:
            raise DreamLiteError(f"override {item!r} must look like key=value (e.g. optim.lr=1e-4)")
        key, raw = item.split("=", 1)
        _set(tree, key.strip(), yaml.safe_load(raw))
    return _build(TrainConfig, tree, "").validate()


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
