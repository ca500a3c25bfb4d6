"""Post-training stages on the pretraining `Trainer`: SFT, ReFL and DMD2, and the one entry point to run them.

- `sft`: the flow objective on a curated Shapes subset (data/curation.py), usually at a lower `optim.lr`;
- `refl`: the flow objective interleaved with reward feedback learning (refl.py);
- `dmd2`: distribution-matching distillation to a 4-step, guidance-free model exported in mode="mobile" (dmd2.py).

Each starts from the previous stage's model folder (`init`), checkpoints atomically and resumes exactly,
as the pretraining stages do.
"""

from __future__ import annotations

import torch

from ..errors import DreamLiteError
from .config import TrainConfig
from .trainer import Trainer


class SFTTrainer(Trainer):
    """The flow objective on the curated selection `cfg.sft` (Shapes source); other sources train unchanged."""

    def _data(self):
        cfg = self.cfg
        if cfg.data.source != "shapes":
            return super()._data()
        from ..data.curation import CuratedShapesStream
        from ..data.transforms import collate

        start = self.micro_batches * cfg.optim.batch_size * self.accelerator.num_processes
        stream = CuratedShapesStream(cfg.data.size, cfg.data.seed, cfg.curation.categories, cfg.curation.edit_types,
                                     cfg.curation.edit_fraction, start=start)
        return iter(torch.utils.data.DataLoader(stream, batch_size=cfg.optim.batch_size, collate_fn=collate,
                                                num_workers=cfg.data.num_workers))


def _refl_trainer():
    from .refl import ReFLTrainer

    return ReFLTrainer


def _dmd2_trainer():
    from .dmd2 import DMD2Trainer

    return DMD2Trainer


TRAINERS = {"sft": lambda: SFTTrainer, "refl": _refl_trainer, "dmd2": _dmd2_trainer}


def trainer_class(stage: str) -> type[Trainer]:
    """The trainer class for any stage: the post-training ones here, `Trainer` for the pretraining ones."""
    return TRAINERS[stage]() if stage in TRAINERS else Trainer


def build_trainer(cfg: TrainConfig, out_dir: str, resume: str | None = None, stop_after: int | None = None,
                  progress: bool = True) -> Trainer:
    """`build_trainer(cfg, out).train()` runs any stage and returns its model folder."""
    return trainer_class(cfg.stage)(cfg, out_dir, resume=resume, stop_after=stop_after, progress=progress)


def validate_posttrain(cfg: TrainConfig):
    """One-line errors for the post-training sections (called by TrainConfig.validate for these stages)."""
    if cfg.stage == "sft":
        from ..data.curation import check_selection

        check_selection(cfg.curation.categories, cfg.curation.edit_types, cfg.curation.edit_fraction)
    if cfg.stage == "refl":
        r = cfg.feedback
        if not (r.generate_reward or r.edit_reward):
            raise DreamLiteError("stage refl needs feedback.generate_reward and/or feedback.edit_reward")
        if r.num_steps < 1 or r.every < 1:
            raise DreamLiteError("feedback.num_steps and feedback.every must be >= 1")
        if not 0.0 <= r.stop_min < r.stop_max <= 1.0:
            raise DreamLiteError(f"need 0 <= feedback.stop_min < feedback.stop_max <= 1, got {r.stop_min}, {r.stop_max}")
    if cfg.stage == "dmd2":
        d = cfg.distill
        if d.num_steps < 1 or d.fake_steps < 1:
            raise DreamLiteError("distill.num_steps and distill.fake_steps must be >= 1")
        if not 0.0 < d.min_sigma < d.max_sigma < 1.0:
            raise DreamLiteError(f"need 0 < distill.min_sigma < distill.max_sigma < 1, got {d.min_sigma}, {d.max_sigma}")
