"""ReFL (ImageReward's reward feedback learning) adapted to rectified flow, for generation and editing.

Per reward step: sample the first part of a guided trajectory without gradients, stop at a random late
step k, predict the clean latent in one step with gradients (x0 = x_t - sigma_k v), decode it with the
frozen VAE and maximise the task's reward of the decoded image. The flow-matching loss stays on every
step, so the model keeps its data distribution while the reward pulls it (ReFL's interleaving).
"""

from __future__ import annotations

import torch

from ..errors import DreamLiteError
from ..guidance import carry_noise, recorded_guidance, resolve_noise_scale, training_guidance
from ..models.vae import decode_latents
from .config import TrainConfig
from .rewards import SentenceEncoder, TaskRewards, load_reward
from .sampling import Conditioning, encode_batch, euler_step, guided_velocity, predict_x0, sampling_sigmas
from .trainer import Trainer


def refl_loss(unet, vae, rewards: TaskRewards, c: Conditioning, sigmas: torch.Tensor, stop: int,
              noise: torch.Tensor, guidance: float, image_guidance: float, max_sigma: float = 1.0,
              conditioning: str = "spatial", noise_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, scores, scored): -mean reward of the one-step prediction at trajectory step `stop`.

    `sigmas` are the sampler's `N + 1` levels; steps `0 .. stop-1` run without gradients, each carrying its
    predicted noise on scaled by `noise_scale` as the pipeline's sampler does.
    """
    if not 0 <= stop < len(sigmas) - 1:
        raise DreamLiteError(f"ReFL stop step {stop} is outside the {len(sigmas) - 1}-step trajectory")
    sigmas = sigmas.to(noise.device, noise.dtype)
    x = noise

    def velocity(latents, sigma):
        return guided_velocity(unet, latents, c.source, sigma, c.embeds, c.mask, c.uncond_embeds, c.uncond_mask,
                               c.time_ids, guidance, image_guidance, max_sigma, conditioning, c.is_edit)

    with torch.no_grad():
        for i in range(stop):
            v = carry_noise(velocity(x, sigmas[i]), x, sigmas[i], sigmas[i + 1], noise_scale)
            x = euler_step(x, v, sigmas[i], sigmas[i + 1])
    x0 = predict_x0(x, velocity(x, sigmas[stop]), sigmas[stop])
    images = decode_latents(vae, x0).clamp(-1, 1)
    scores, scored = rewards(images, c.prompts, c.source_pixels, c.is_edit)
    if not scored.any():
        return images.new_zeros(()), scores.detach(), scored
    return -scores[scored].mean(), scores.detach(), scored


def stop_range(num_steps: int, stop_min: float, stop_max: float) -> tuple[int, int]:
    """Inclusive step indices [lo, hi] of the late part of an N-step trajectory."""
    lo = min(int(stop_min * num_steps), num_steps - 1)
    hi = max(lo, min(int(stop_max * num_steps + 0.999999) - 1, num_steps - 1))
    return lo, hi


class ReFLTrainer(Trainer):
    """Flow-matching loss every step plus `feedback.weight` x the reward loss every `feedback.every` micro-batches.

    Rewards come from `feedback.generate_reward` / `feedback.edit_reward` (see `rewards.load_reward`); rows of a
    task without a reward only get the flow loss.
    """

    def __init__(self, cfg: TrainConfig, out_dir: str, resume: str | None = None, stop_after: int | None = None,
                 progress: bool = True, rewards: TaskRewards | None = None):
        super().__init__(cfg, out_dir, resume, stop_after, progress)
        self.rewards = rewards

    def _setup_stage(self):
        r = self.cfg.feedback
        if self.rewards is None:
            encoder = SentenceEncoder(self.text_encoder, self.tokenizer)  # Shapes rewards share the loaded MiniLM
            self.rewards = TaskRewards(
                load_reward(r.generate_reward, "generate", encoder) if r.generate_reward else None,
                load_reward(r.edit_reward, "edit", encoder) if r.edit_reward else None)
        self.rewards.requires_grad_(False).eval().to(self.accelerator.device)
        self.guidance = training_guidance(r.guidance, r.image_guidance, self.cfg.init)
        self.noise_scale = resolve_noise_scale(recorded_guidance(self.cfg.init))  # the init model's sampler
        self._metrics = {"flow_loss": [], "reward": []}

    def _stage_loss(self):
        return self._refl_step

    def _refl_step(self, batch):
        r = self.cfg.feedback
        flow = self._flow_loss(batch)
        self._metrics["flow_loss"].append(flow.item())
        if self.micro_batches % r.every:
            return flow
        c = encode_batch(self.encoder, self.vae, batch, self.accelerator.device)
        sigmas = sampling_sigmas(self._scheduler_config(), r.num_steps, *c.x0.shape[-2:])
        lo, hi = stop_range(r.num_steps, r.stop_min, r.stop_max)
        stop = int(torch.randint(lo, hi + 1, (1,), generator=self.generator))
        noise = torch.randn(c.x0.shape, generator=self.generator).to(c.x0.device)
        loss, scores, scored = refl_loss(self.model, self.vae, self.rewards, c, sigmas, stop, noise, *self.guidance,
                                         self.cfg.objective.conditioning, self.noise_scale)
        if scored.any():
            self._metrics["reward"].append(scores[scored].mean().item())
        return flow + r.weight * loss

    def _scheduler_config(self) -> dict:
        from ..models.presets import build_scheduler

        return dict(build_scheduler(self.cfg.preset).config)

    def _stage_metrics(self) -> dict:
        out = {k: sum(v) / len(v) if v else float("nan") for k, v in self._metrics.items()}
        self._metrics = {k: [] for k in self._metrics}
        return out
