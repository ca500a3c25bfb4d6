"""One trainer for every pretraining stage, on accelerate: one CPU process here, many GPUs unchanged.

Stages: `vae` trains AutoencoderTiny to reconstruct images; `t2i`, `edit` and `joint` train the U-Net with
the rectified-flow objective on the corresponding task mix, starting from the previous stage's folder.
Each stage ends by writing a model folder (`<out>/model`) that the pipeline loads.
"""

from __future__ import annotations

import copy
import csv
import itertools
import math
import os
import time

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers import AutoencoderTiny, DreamLiteUNetModel
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from ..data.transforms import collate
from ..errors import DreamLiteError
from ..guidance import recorded_guidance
from ..models.canvas import conditioning_of
from ..models.presets import build_scheduler, build_unet, build_vae, get_preset
from ..models.text_encoders import CachedPromptEncoder, load_minilm, prompt_encoder_for, with_task_prefix
from ..models.unet import load_unet
from ..models.vae import (
    decode_latents,
    load_vae,
    model_latents,
    normalise_latents,
    vae_scale_factor,
)
from .checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from .config import TrainConfig
from .objective import (
    batch_latents,
    dropout_masks,
    flow_matching_loss,
    sample_sigmas,
    shape_code_map,
    unchanged_cells,
    widen_for_channel_conditioning,
)


def build_dataset(cfg: TrainConfig, start: int):
    data = cfg.data
    if data.source == "shapes":
        from ..data.shapes import ShapesStream

        task = {"t2i": "t2i", "edit": "edit", "joint": "joint", "vae": "joint"}[cfg.stage] if data.task == "auto" else data.task
        return ShapesStream(task, data.size, data.seed, data.edit_fraction, start=start,
                            with_shapes=bool(cfg.objective.shape_weight))
    if data.source == "webdataset":
        from ..data.webdataset_io import WebDatasetStream

        stream = WebDatasetStream(data.path, data.size, repeat=True)
        if data.num_workers > len(stream.urls):  # shards are split over workers: one would get none
            raise DreamLiteError(f"data.num_workers={data.num_workers} but {data.path} has {len(stream.urls)} "
                                 f"shard(s); use at most that many workers")
        return stream
    from ..data.imagefolder import ImageFolderDataset

    dataset = ImageFolderDataset(data.path, data.size, repeat=True)
    if cfg.stage == "edit" and not any(row.get("source_file_name") for row in dataset.rows):
        raise DreamLiteError(f"stage edit needs edit triplets: no row of {data.path}/metadata.jsonl has a source_file_name")
    return dataset


def _next_batch(batches):
    """The next batch. A DataLoader re-raises a worker's error with the worker's traceback in its message; the
    user gets the error's own line."""
    try:
        return next(batches)
    except DreamLiteError as e:
        last = str(e).strip().splitlines()[-1]
        raise DreamLiteError(last.split("DreamLiteError: ", 1)[-1]) from None


def _load_vae(cfg: TrainConfig) -> AutoencoderTiny:
    for folder in (cfg.vae, cfg.init):
        if folder:
            return _loaded(load_vae, folder)
    return build_vae(cfg.preset, **cfg.vae_overrides)


def _loaded(load, folder: str):
    """A model a stage starts from; a missing or unreadable one is one line, not a traceback."""
    try:
        return load(folder)
    except (OSError, ValueError, RuntimeError) as e:
        raise DreamLiteError(f"cannot load {folder}: {str(e).splitlines()[0]}") from e


def _load_unet(cfg: TrainConfig, latent_channels: int) -> DreamLiteUNetModel:
    """The previous stage's U-Net, or a new one whose channels follow the VAE's latents (unless overridden)."""
    if cfg.init:
        if not os.path.isdir(os.path.join(cfg.init, "unet")):
            raise DreamLiteError(f"init {cfg.init} has no unet/ folder: give a model folder of an earlier stage")
        unet = _loaded(load_unet, os.path.join(cfg.init, "unet"))
    else:
        channels = {"in_channels": latent_channels, "out_channels": latent_channels}
        unet = build_unet(cfg.preset, **{**channels, **cfg.unet_overrides})
    if unet.config.out_channels != latent_channels:
        raise DreamLiteError(f"the U-Net predicts {unet.config.out_channels} latent channels, the VAE has {latent_channels}")
    if cfg.objective.conditioning == "channel":
        return widen_for_channel_conditioning(unet)
    if conditioning_of(unet) != "spatial":
        raise DreamLiteError(f"{cfg.init} reads its condition by channels: set objective.conditioning=channel")
    return unet


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str, resume: str | None = None, stop_after: int | None = None,
                 progress: bool = True):
        self.cfg, self.out_dir, self.resume, self.stop_after, self.progress = cfg, out_dir, resume, stop_after, progress
        self.ckpt_dir = os.path.join(out_dir, "checkpoints")

    # ----------------------------------------------------------------------------- setup
    def _setup(self):
        cfg = self.cfg
        self.accelerator = Accelerator(gradient_accumulation_steps=cfg.optim.grad_accum,
                                       mixed_precision=cfg.optim.mixed_precision, cpu=not torch.cuda.is_available())
        set_seed(cfg.optim.seed, device_specific=False)
        self.vae = _load_vae(cfg)
        if cfg.stage == "vae":
            self.model = self.vae
            if cfg.freeze_vae_encoder:
                self.vae.encoder.requires_grad_(False)
            if cfg.objective.colour_weight and self.vae.config.latent_channels < 3:
                raise DreamLiteError("objective.colour_weight needs a VAE with at least 3 latent channels")
            if cfg.objective.shape_weight and self.vae.config.latent_channels < 5:
                raise DreamLiteError("objective.shape_weight ties latent channels 3 and 4: a VAE with at least 5 "
                                     "(vae_overrides={latent_channels: 5})")
        else:
            self.vae.requires_grad_(False).eval()
            self.model = _load_unet(cfg, self.vae.config.latent_channels)
            if get_preset(cfg.preset).text_encoder != "minilm":
                raise DreamLiteError("training here uses the MiniLM text encoder; Qwen3-VL training needs its weights")
            self.text_encoder, self.tokenizer = load_minilm()
            self.text_encoder.requires_grad_(False).eval()
            self.encoder = CachedPromptEncoder(prompt_encoder_for(self.text_encoder, self.tokenizer))
        if cfg.optim.gradient_checkpointing:
            self.model.enable_gradient_checkpointing()
        self.model.train()
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.lr_scheduler = get_scheduler(o.lr_schedule, self.optimizer, num_warmup_steps=o.warmup_steps,
                                          num_training_steps=o.steps)
        self.ema = copy.deepcopy(self.model).requires_grad_(False) if o.ema_decay > 0 else None
        self.generator = torch.Generator().manual_seed(o.seed * 1000 + self.accelerator.process_index)
        self.step, self.micro_batches = 0, 0
        self._setup_stage()
        if self.resume:
            self._restore(resolve_checkpoint(self.ckpt_dir, self.resume))
        self.model, self.optimizer, self.lr_scheduler = self.accelerator.prepare(self.model, self.optimizer, self.lr_scheduler)
        self.vae.to(self.accelerator.device)

    def _data(self):
        cfg, world = self.cfg, self.accelerator.num_processes
        start = self.micro_batches * cfg.optim.batch_size * world if cfg.data.source == "shapes" else 0
        loader = torch.utils.data.DataLoader(build_dataset(cfg, start), batch_size=cfg.optim.batch_size,
                                             collate_fn=collate, num_workers=cfg.data.num_workers)
        batches = iter(loader)
        if cfg.data.source != "shapes":  # finite sources: skip what was already consumed
            batches = itertools.islice(batches, self.micro_batches, None)
        return batches

    # ----------------------------------------------------------------------------- losses
    def _vae_loss(self, batch):
        images = batch["image"].to(self.accelerator.device)
        model = self.accelerator.unwrap_model(self.model)
        with torch.set_grad_enabled(not self.cfg.freeze_vae_encoder):
            raw = model.encode(images).latents
        latents = model_latents(model, raw)  # the U-Net's units, so latent_noise means what it does there
        loss = 0.0
        if self.cfg.objective.colour_weight:  # on the encoder's clean latents, in its own units
            pooled = F.avg_pool2d(images, vae_scale_factor(model))
            loss = self.cfg.objective.colour_weight * F.mse_loss(raw[:, :3], pooled)
        if self.cfg.objective.shape_weight:  # channels 3-4: where each shape is, as its code
            codes = shape_code_map(batch["shape_coverage"].to(raw.device), vae_scale_factor(model))
            loss = loss + self.cfg.objective.shape_weight * F.mse_loss(raw[:, 3:5], codes)
        if self.cfg.objective.latent_noise:  # per-sample level
            level = torch.rand(latents.shape[0], 1, 1, 1, generator=self.generator) * self.cfg.objective.latent_noise
            latents = latents + (torch.randn(latents.shape, generator=self.generator) * level).to(latents.device)
        recon = decode_latents(model, latents)
        return loss + F.mse_loss(recon, images) + self.cfg.objective.l1_weight * F.l1_loss(recon, images)

    @torch.no_grad()
    def _conditioning(self, batch):
        cfg, device = self.cfg.objective, self.accelerator.device
        is_edit = batch["is_edit"]
        drop_text, drop_image = dropout_masks(is_edit, self.generator, cfg.drop_text, cfg.drop_image, cfg.drop_both)
        texts = ["" if drop else with_task_prefix(text, task) for text, task, drop in zip(batch["text"], batch["task"], drop_text)]
        embeds, mask = self.encoder.encode(texts, "generate")
        kept = is_edit & ~drop_image  # generation rows and dropped images condition on zeros
        x0, condition, time_ids = batch_latents(self.vae, batch, kept, device)
        keep = kept.nonzero().flatten()
        weights = None
        if cfg.keep_weight != 1 and len(keep):  # cells the edit keeps, where the model can copy its source
            weights = torch.ones_like(x0[:, :1])
            same = unchanged_cells(batch["image"][keep], batch["source"][keep], vae_scale_factor(self.vae))
            weights[keep] = torch.where(same.to(device), cfg.keep_weight, 1.0)
        return x0, condition, embeds.to(device), mask.to(device), time_ids, weights

    def _flow_loss(self, batch):
        o = self.cfg.objective
        x0, condition, embeds, mask, time_ids, weights = self._conditioning(batch)
        if o.canvas == "target":  # the zeros half left out: generation rows only (checked by the config)
            condition = None
        sigmas = sample_sigmas(x0.shape[0], self.generator, o.logit_mean, o.logit_std, o.shift).to(x0.device)
        noise = torch.randn(x0.shape, generator=self.generator).to(x0.device)
        return flow_matching_loss(self.model, x0, condition, embeds, mask, time_ids, sigmas, noise, o.conditioning,
                                  weights)

    # ----------------------------------------------------------------------------- loop
    def train(self) -> str:
        self._setup()
        cfg, acc = self.cfg, self.accelerator
        loss_fn = self._stage_loss()
        batches = self._data()
        if self.step < cfg.optim.steps:  # a source with no usable sample fails here, before the run writes anything
            batches = itertools.chain([_next_batch(batches)], batches)
        logger = MetricsLogger(self.out_dir) if acc.is_main_process else None
        if acc.is_main_process:
            cfg.save(os.path.join(self.out_dir, "config.yaml"))
        bar = tqdm(total=cfg.optim.steps, initial=self.step, desc=f"train {cfg.stage}", disable=not (self.progress and acc.is_main_process))
        last_time, last_step, running = time.time(), self.step, []
        while self.step < cfg.optim.steps:
            for _ in range(cfg.optim.grad_accum):
                batch = _next_batch(batches)
                self.micro_batches += 1
                with acc.accumulate(self.model):
                    loss = loss_fn(batch)
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.optim.grad_clip > 0:
                        acc.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                    self.optimizer.step()
                    self.lr_scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                running.append(loss.detach().float().item())
            self.step += 1
            self._update_ema()
            bar.update()
            if self.step % cfg.log.every == 0 or self.step == cfg.optim.steps:
                now = time.time()
                speed = (self.step - last_step) / max(now - last_time, 1e-9)
                mean_loss = sum(running) / len(running)
                bar.set_postfix(loss=f"{mean_loss:.4f}", steps_per_s=f"{speed:.2f}")
                if logger:
                    logger.log(self.step, loss=mean_loss, **self._stage_metrics(), lr=self.lr_scheduler.get_last_lr()[0],
                               steps_per_s=speed)
                last_time, last_step, running = now, self.step, []
            if self.step % cfg.log.checkpoint_every == 0 or self.step == cfg.optim.steps:
                self._checkpoint()
            if self.stop_after is not None and self.step >= self.stop_after:
                break
        bar.close()
        if logger:
            logger.close()
        acc.wait_for_everyone()
        return self._export() if self.step >= cfg.optim.steps else ""

    # ----------------------------------------------------------------------------- hooks for post-training stages
    export_mode = "base"  # pipeline mode of the exported folder ("mobile" for step-distilled generators)

    def _setup_stage(self):
        """Build extra models/optimizers before a resume restores them (no-op for pretraining)."""

    def _stage_loss(self):
        return self._vae_loss if self.cfg.stage == "vae" else self._flow_loss

    def _stage_metrics(self) -> dict:
        """Extra per-log-interval metrics for metrics.csv (means since the last log)."""
        return {}

    def _save_stage_state(self, tensors: dict, optim_state: dict):
        """Add extra tensors / optimizer states to a checkpoint."""

    def _load_stage_state(self, tensors: dict, optim_state: dict):
        """Restore what `_save_stage_state` added."""

    def _update_ema(self):
        if self.ema is None:
            return
        decay = min(self.cfg.optim.ema_decay, (1 + self.step) / (10 + self.step))  # warm-up, as diffusers' EMAModel
        with torch.no_grad():
            params = [p.detach() for p in self.accelerator.unwrap_model(self.model).parameters()]
            torch._foreach_lerp_(list(self.ema.parameters()), params, 1 - decay)

    # ----------------------------------------------------------------------------- state
    def _checkpoint(self):
        if not self.accelerator.is_main_process:
            self.accelerator.wait_for_everyone()
            return
        model = self.accelerator.unwrap_model(self.model)
        tensors = {"model": model.state_dict()}
        if self.ema is not None:
            tensors["ema"] = self.ema.state_dict()
        tensors["rng"] = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        optim_state = {"optimizer": self.optimizer.state_dict(), "lr_scheduler": self.lr_scheduler.state_dict()}
        self._save_stage_state(tensors, optim_state)
        save_checkpoint(self.ckpt_dir, self.step, tensors, optim_state,
                        {"micro_batches": self.micro_batches, "stage": self.cfg.stage}, keep=self.cfg.log.keep)
        self.accelerator.wait_for_everyone()

    def _restore(self, path: str):
        tensors, optim_state, state = load_checkpoint(path)
        if state.get("stage", self.cfg.stage) != self.cfg.stage:
            raise DreamLiteError(f"checkpoint {path} is from a {state['stage']!r} stage, not {self.cfg.stage!r}")
        try:
            self.model.load_state_dict(tensors["model"])
            if self.ema is not None and "ema" in tensors:
                self.ema.load_state_dict(tensors["ema"])
            self.optimizer.load_state_dict(optim_state["optimizer"])
            self.lr_scheduler.load_state_dict(optim_state["lr_scheduler"])
            self.generator.set_state(tensors["rng"]["generator"])
            torch.set_rng_state(tensors["rng"]["torch"])
            self.step, self.micro_batches = state["step"], state["micro_batches"]
            self._load_stage_state(tensors, optim_state)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise DreamLiteError(f"checkpoint {path} does not fit this run: {str(e).splitlines()[0]}") from e

    def _normalisation_images(self, count: int = 256) -> torch.Tensor:
        """The first `count` images of the stage's data stream, for the latent statistics."""
        stream = iter(build_dataset(self.cfg, 0))
        return collate([next(stream) for _ in range(count)])["image"].to(self.accelerator.device)

    def _export(self) -> str:
        """The stage's result as a model folder: EMA weights, the VAE, the scheduler, the encoder's name."""
        from ..pipeline import DreamLitePipeline

        out = os.path.join(self.out_dir, "model")
        if not self.accelerator.is_main_process:
            return out
        final = self.ema if self.ema is not None else self.accelerator.unwrap_model(self.model)
        if self.cfg.stage == "vae":
            if not self.cfg.freeze_vae_encoder:  # a decoder-only fine-tune keeps the latent space, factors included
                shift, scale = normalise_latents(final, self._normalisation_images())
                print(f"[vae] latent normalisation: shift_factor={shift:.4f} scaling_factor={scale:.4f}")
            final.save_pretrained(os.path.join(out, "vae"))
            return out
        # A base-mode fine-tune samples like the model it started from: its recorded guidance defaults carry over.
        carried = recorded_guidance(self.cfg.init) if self.export_mode == "base" else {}
        pipe = DreamLitePipeline(vae=self.vae, unet=final, scheduler=build_scheduler(self.cfg.preset),
                                 mode=self.export_mode, text_encoder_name="minilm", **carried)
        pipe.save_pretrained(out)
        return out


class MetricsLogger:
    """metrics.csv always; TensorBoard too when it is installed."""

    def __init__(self, out_dir: str):
        os.makedirs(out_dir, exist_ok=True)
        self.path = os.path.join(out_dir, "metrics.csv")
        self.file = open(self.path, "a", newline="")
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(out_dir, "tensorboard"))
        except ImportError:
            pass

    def log(self, step: int, **values):
        if self.file.tell() == 0:
            csv.writer(self.file).writerow(["step", *values])
        csv.writer(self.file).writerow([step, *(f"{v:.6g}" if isinstance(v, float) else v for v in values.values())])
        self.file.flush()
        if self.writer:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)

    def close(self):
        self.file.close()
        if self.writer:
            self.writer.close()
