"""DMD2 for rectified flow, unified: one few-step generator for text-to-image and editing, no guidance.

- generator: starts from the base U-Net; runs `num_steps` FlowMatch Euler steps at the pipeline's own
  sigmas (mode="mobile"), so what it is trained on is exactly what `DreamLitePipeline` samples;
- real score: the frozen base U-Net with guidance (text CFG to generate, text + image CFG to edit);
- fake score: a copy of the base trained with the flow loss on generator samples;
- the generator gets DMD's normalised distribution-matching gradient, (x0_fake - x0_real) / mean|x0 - x0_real|,
  at a random re-noising level, plus a non-saturating GAN loss from a classifier head on the fake score's
  bottleneck (mid-block) features; the head learns on re-noised real latents vs re-noised generator samples;
- two time-scales: `fake_steps` fake-score/classifier updates per generator update;
- backward simulation: to train step k, the generator first runs steps 0..k-1 itself (no gradients);
- no regression loss. Generation and editing rows share every batch.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..guidance import training_guidance
from .objective import flow_matching_loss, predict_velocity
from .sampling import Conditioning, encode_batch, euler_step, guided_velocity, predict_x0, sampling_sigmas
from .trainer import Trainer


class MidBlockFeatures:
    """Captures the U-Net's mid-block (bottleneck) output with a forward hook."""

    def __init__(self, unet):
        self.features = None
        self.handle = unet.mid_block.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.features = output[0] if isinstance(output, tuple) else output

    def pop(self) -> torch.Tensor:
        features, self.features = self.features, None
        return features


class GANHead(nn.Module):
    """Real/fake logit per sample from bottleneck features (conv, GroupNorm, SiLU, then a pooled linear)."""

    def __init__(self, channels: int, hidden: int = 128):
        super().__init__()
        groups = 8 if hidden % 8 == 0 else 1
        self.net = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.GroupNorm(groups, hidden), nn.SiLU(),
                                 nn.Conv2d(hidden, hidden, 3, padding=1), nn.GroupNorm(groups, hidden), nn.SiLU())
        self.out = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(features).mean(dim=(2, 3))).squeeze(1)


def generator_x0(generator, noise, c: Conditioning, sigmas: torch.Tensor, step: int, conditioning="spatial",
                 grad: bool = True) -> torch.Tensor:
    """Backward simulation: run steps 0..step-1 without gradients, then predict x0 at `step`."""
    x = noise

    def velocity(latents, sigma):
        return predict_velocity(generator, latents, c.source, sigma.expand(latents.shape[0]), c.embeds, c.mask,
                                c.time_ids, conditioning)

    with torch.no_grad():
        for i in range(step):
            x = euler_step(x, velocity(x, sigmas[i]), sigmas[i], sigmas[i + 1])
    with torch.set_grad_enabled(grad):
        return predict_x0(x, velocity(x, sigmas[step]), sigmas[step])


def distribution_matching_loss(x0: torch.Tensor, c: Conditioning, real_unet, fake_unet, sigma: torch.Tensor,
                               noise: torch.Tensor, guidance: float, image_guidance: float, max_sigma: float = 1.0,
                               conditioning: str = "spatial") -> torch.Tensor:
    """DMD's loss, whose gradient w.r.t. x0 is the normalised difference of fake and real x0 predictions."""
    s = sigma.view(-1, 1, 1, 1)
    with torch.no_grad():
        noisy = (1 - s) * x0 + s * noise
        v_real = guided_velocity(real_unet, noisy, c.source, sigma, c.embeds, c.mask, c.uncond_embeds, c.uncond_mask,
                                 c.time_ids, guidance, image_guidance, max_sigma, conditioning, c.is_edit)
        v_fake = predict_velocity(fake_unet, noisy, c.source, sigma, c.embeds, c.mask, c.time_ids, conditioning)
        x0_real, x0_fake = predict_x0(noisy, v_real, s), predict_x0(noisy, v_fake, s)
        weight = (x0 - x0_real).abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        grad = torch.nan_to_num((x0_fake - x0_real) / weight)
    return 0.5 * F.mse_loss(x0, (x0 - grad).detach())


def classifier_logits(fake_unet, features: MidBlockFeatures, head: GANHead, x0, c: Conditioning, sigma, noise,
                      conditioning="spatial") -> torch.Tensor:
    """Re-noise x0 to `sigma`, run the fake score, classify its bottleneck features."""
    s = sigma.view(-1, 1, 1, 1)
    predict_velocity(fake_unet, (1 - s) * x0 + s * noise, c.source, sigma, c.embeds, c.mask, c.time_ids, conditioning)
    return head(features.pop())


class DMD2Trainer(Trainer):
    """`self.model` is the generator (its EMA and optimizer are the trainer's); the fake score, the GAN head and
    their optimizer are built in `_setup_stage` and saved in every checkpoint. Exports a mode="mobile" folder."""

    export_mode = "mobile"

    def _setup_stage(self):
        d = self.cfg.distill
        base = self.model  # not yet wrapped by accelerate: the initial (base) weights
        self.real_unet = copy.deepcopy(base).requires_grad_(False).eval()
        self.fake_unet = copy.deepcopy(base).requires_grad_(True).train()
        self.features = MidBlockFeatures(self.fake_unet)
        self.gan_head = GANHead(base.config.block_out_channels[-1])
        o = self.cfg.optim
        self.fake_optimizer = torch.optim.AdamW(list(self.fake_unet.parameters()) + list(self.gan_head.parameters()),
                                                lr=d.fake_lr or o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.guidance = training_guidance(d.guidance, d.image_guidance, self.cfg.init)
        self._metrics = {"dmd": [], "gan_g": [], "fake_flow": [], "disc": []}

    def _setup(self):
        super()._setup()
        acc = self.accelerator
        self.fake_unet, self.gan_head, self.fake_optimizer = acc.prepare(self.fake_unet, self.gan_head,
                                                                         self.fake_optimizer)
        self.real_unet.to(acc.device)

    def _data(self):
        self._batches = super()._data()  # the DMD2 step also draws the fake-score batches from this stream
        return self._batches

    def _stage_loss(self):
        return self._dmd2_step

    # ----------------------------------------------------------------------------- steps
    def _sigmas(self, c: Conditioning) -> torch.Tensor:
        from ..models.presets import build_scheduler

        if getattr(self, "_sigma_cache", None) is None or self._sigma_cache[0] != tuple(c.x0.shape[-2:]):
            config = dict(build_scheduler(self.cfg.preset).config)
            self._sigma_cache = (tuple(c.x0.shape[-2:]), sampling_sigmas(config, self.cfg.distill.num_steps, *c.x0.shape[-2:]))
        return self._sigma_cache[1].to(c.x0.device)

    def _randn(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.generator).to(like.device, like.dtype)

    def _renoise_sigma(self, n: int, device) -> torch.Tensor:
        d = self.cfg.distill
        return (d.min_sigma + (d.max_sigma - d.min_sigma) * torch.rand(n, generator=self.generator)).to(device)

    def _generator_sample(self, c: Conditioning, grad: bool) -> torch.Tensor:
        sigmas = self._sigmas(c)
        step = int(torch.randint(0, len(sigmas) - 1, (1,), generator=self.generator))
        return generator_x0(self.model, self._randn(c.x0), c, sigmas, step, self.cfg.objective.conditioning, grad)

    def _fake_step(self, batch):
        """One update of the fake score (flow loss on generator samples) and the GAN head (real vs generated)."""
        conditioning = self.cfg.objective.conditioning
        c = encode_batch(self.encoder, self.vae, batch, self.accelerator.device)
        x0_gen = self._generator_sample(c, grad=False)
        n = x0_gen.shape[0]
        flow = flow_matching_loss(self.fake_unet, x0_gen, c.source, c.embeds, c.mask, c.time_ids,
                                  self._renoise_sigma(n, x0_gen.device), self._randn(x0_gen), conditioning)
        sigma = self._renoise_sigma(n, x0_gen.device)
        self.features.pop()
        real = classifier_logits(self.fake_unet, self.features, self.gan_head, c.x0, c, sigma, self._randn(c.x0),
                                 conditioning)
        fake = classifier_logits(self.fake_unet, self.features, self.gan_head, x0_gen, c, sigma, self._randn(c.x0),
                                 conditioning)
        disc = F.softplus(-real).mean() + F.softplus(fake).mean()
        loss = flow + self.cfg.distill.disc_weight * disc
        self.fake_optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.cfg.optim.grad_clip > 0:
            self.accelerator.clip_grad_norm_(list(self.fake_unet.parameters()) + list(self.gan_head.parameters()),
                                             self.cfg.optim.grad_clip)
        self.fake_optimizer.step()
        self.fake_optimizer.zero_grad(set_to_none=True)
        self._metrics["fake_flow"].append(flow.item())
        self._metrics["disc"].append(disc.item())

    def _dmd2_step(self, batch):
        d, conditioning = self.cfg.distill, self.cfg.objective.conditioning
        for _ in range(d.fake_steps):
            self._fake_step(next(self._batches))
            self.micro_batches += 1  # consumed from the same stream: resume skips them too
        c = encode_batch(self.encoder, self.vae, batch, self.accelerator.device)
        x0 = self._generator_sample(c, grad=True)
        sigma = self._renoise_sigma(x0.shape[0], x0.device)
        dmd = distribution_matching_loss(x0, c, self.real_unet, self.fake_unet, sigma, self._randn(x0), *self.guidance,
                                         conditioning)
        self.fake_unet.requires_grad_(False)  # gradients reach x0 through the frozen fake score and head
        self.gan_head.requires_grad_(False)
        try:
            logits = classifier_logits(self.fake_unet, self.features, self.gan_head, x0, c, sigma, self._randn(x0),
                                       conditioning)
            gan = F.softplus(-logits).mean()
        finally:
            self.fake_unet.requires_grad_(True)
            self.gan_head.requires_grad_(True)
        self._metrics["dmd"].append(dmd.item())
        self._metrics["gan_g"].append(gan.item())
        return dmd + d.gan_weight * gan

    # ----------------------------------------------------------------------------- logging and state
    def _stage_metrics(self) -> dict:
        out = {k: sum(v) / len(v) if v else float("nan") for k, v in self._metrics.items()}
        self._metrics = {k: [] for k in self._metrics}
        return out

    def _save_stage_state(self, tensors: dict, optim_state: dict):
        unwrap = self.accelerator.unwrap_model
        tensors["fake_score"] = unwrap(self.fake_unet).state_dict()
        tensors["gan_head"] = unwrap(self.gan_head).state_dict()
        optim_state["fake_optimizer"] = self.fake_optimizer.state_dict()

    def _load_stage_state(self, tensors: dict, optim_state: dict):
        self.fake_unet.load_state_dict(tensors["fake_score"])
        self.gan_head.load_state_dict(tensors["gan_head"])
        self.fake_optimizer.load_state_dict(optim_state["fake_optimizer"])
