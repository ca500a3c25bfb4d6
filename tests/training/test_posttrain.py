"""Micro configurations of the post-training stages: SFT, ReFL and DMD2 run, move the right way, resume exactly."""

import csv
import math

import pytest
import torch
from safetensors.torch import load_file

from dreamlite.data.curation import CuratedShapesStream, category_counts, curated_sample
from dreamlite.errors import DreamLiteError
from dreamlite.training.config import load_config
from dreamlite.training.posttrain import build_trainer
from dreamlite.training.recipes import stage_config_path
from dreamlite.training.rewards import RewardModel, TaskRewards

MICRO_UNET = ("unet_overrides={block_out_channels: [32, 64, 64], attention_head_dim: [1, 2, 2], "
              "transformer_layers_per_block: [1, 1, 1], cross_attention_dim: 64}")


def micro(stage, steps, *extra):
    return load_config(None, [f"stage={stage}", "data.size=32", "data.task=joint", f"optim.steps={steps}",
                              "optim.batch_size=4", "optim.lr=2e-3", "optim.warmup_steps=2", "log.every=1",
                              "log.checkpoint_every=3", MICRO_UNET, *extra])


def metrics(out):
    with open(out / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


class MeanPixelReward(RewardModel):
    """A transparent differentiable reward: brighter images score higher (edit rows also see the source)."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, images, prompts, sources=None):
        self.check(images, prompts, sources)
        return images.mean(dim=(1, 2, 3))


# ----------------------------------------------------------------------------- SFT
def test_sft_selection_is_curated_balanced_and_reproducible():
    stream = CuratedShapesStream(32, 0, categories=["counting", "position"], edit_types=["add", "style"])
    counts = category_counts(stream, 80)
    assert set(counts) == {"counting", "position", "edit:add", "edit:style"}, counts
    assert min(counts.values()) >= 10, counts  # each selected kind appears at its share (20 expected)
    a = curated_sample(0, 7, 32, ["counting"], ["add"], 0.0)
    b = curated_sample(0, 7, 32, ["counting"], ["add"], 0.0)
    assert a["text"] == b["text"] and (a["image"] == b["image"]).all() and a["category"] == "counting"
    with pytest.raises(DreamLiteError, match="unknown 'countin'"):
        load_config(None, ["stage=sft", "curation.categories=[countin]"])
    with pytest.raises(DreamLiteError, match="feedback.generate_reward"):
        load_config(None, ["stage=refl"])


def test_sft_stage_trains_on_the_curated_subset(tmp_path):
    trainer = build_trainer(micro("sft", 12, "curation.categories=[counting, position]"), str(tmp_path), progress=False)
    assert type(trainer).__name__ == "SFTTrainer"
    model = trainer.train()
    batch = next(trainer._data())
    for text, task in zip(batch["text"], batch["task"]):  # counting or position prompts only, or edits
        assert task == "edit" or any(w in text for w in ("one", "two", "three", "four", "left of", "right of", "above", "below"))
    curve = [r["loss"] for r in metrics(tmp_path)]
    assert all(math.isfinite(x) for x in curve)
    assert sum(curve[-4:]) / 4 < 0.9 * sum(curve[:4]) / 4, curve
    assert (tmp_path / "model" / "unet").is_dir() and model


# ----------------------------------------------------------------------------- ReFL
def test_refl_loss_raises_the_reward():
    """Optimising the ReFL loss alone on a fixed batch raises the reward of the one-step prediction."""
    from dreamlite.data.shapes import ShapesStream
    from dreamlite.data.transforms import collate
    from dreamlite.models.presets import build_scheduler, build_unet, build_vae
    from dreamlite.models.text_encoders import load_minilm, prompt_encoder_for
    from dreamlite.training.refl import refl_loss
    from dreamlite.training.sampling import encode_batch, sampling_sigmas

    torch.manual_seed(0)
    unet = build_unet("tiny", block_out_channels=(32, 64, 64), attention_head_dim=(1, 2, 2),
                      transformer_layers_per_block=(1, 1, 1), cross_attention_dim=64)
    vae = build_vae("tiny").requires_grad_(False).eval()
    encoder = prompt_encoder_for(*load_minilm())
    samples = [s for task in ("t2i", "edit") for s, _ in zip(ShapesStream(task, 32, seed=3), range(2))]
    c = encode_batch(encoder, vae, collate(samples), "cpu")
    assert c.is_edit.any() and (~c.is_edit).any()
    rewards = TaskRewards(MeanPixelReward("generate"), MeanPixelReward("edit"))
    sigmas = sampling_sigmas(dict(build_scheduler("tiny").config), 6, 4, 4)
    noise = torch.randn(c.x0.shape, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-3)
    scores = []
    for _ in range(6):
        loss, score, scored = refl_loss(unet, vae, rewards, c, sigmas, 4, noise, 3.5, 1.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scores.append(score.mean().item())
    assert scored.all() and math.isfinite(loss.item())
    assert scores[-1] > scores[0] + 0.01, scores
    with torch.no_grad():  # the trajectory follows the sampler's noise scale (1: the plain Euler step)
        at = {k: refl_loss(unet, vae, rewards, c, sigmas, 4, noise, 3.5, 1.5, noise_scale=k)[1] for k in (1.0, 1.2)}
        plain = refl_loss(unet, vae, rewards, c, sigmas, 4, noise, 3.5, 1.5)[1]
    assert torch.equal(at[1.0], plain) and not torch.allclose(at[1.2], plain, atol=1e-4)


def test_refl_stage_interleaves_flow_and_reward(tmp_path):
    from dreamlite.training.rewards import ShapesRewardNet

    for task in ("generate", "edit"):  # untrained Shapes rewards, loaded from folders as a real run does
        torch.manual_seed(0)
        ShapesRewardNet(task=task, image_size=32, channels=(8, 8, 8)).save_pretrained(tmp_path / f"reward-{task}")
    cfg = micro("refl", 6, f"feedback.generate_reward={tmp_path / 'reward-generate'}", "feedback.num_steps=4",
                f"feedback.edit_reward={tmp_path / 'reward-edit'}", "feedback.weight=1.0", "feedback.every=2")
    trainer = build_trainer(cfg, str(tmp_path / "run"), progress=False)
    model = trainer.train()
    assert trainer.rewards.generate.task == "generate" and trainer.rewards.edit.task == "edit"
    assert trainer.noise_scale == 1.0  # no init model, so no recorded noise scale
    tmp_path = tmp_path / "run"
    rows = metrics(tmp_path)
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["flow_loss"]) for r in rows)
    with_reward = [r for r in rows if math.isfinite(r["reward"])]
    assert len(with_reward) == 3  # every second micro-batch
    for r in with_reward:  # loss = flow - weight * reward
        assert r["loss"] == pytest.approx(r["flow_loss"] - r["reward"], abs=1e-4)
    assert (tmp_path / "model" / "unet").is_dir() and model


# ----------------------------------------------------------------------------- DMD2
def test_distribution_matching_gradient():
    """Zero when the fake score equals the (unguided) real score; otherwise the normalised x0 difference."""
    from dreamlite.models.presets import build_unet
    from dreamlite.training.dmd2 import distribution_matching_loss
    from dreamlite.training.sampling import Conditioning

    torch.manual_seed(0)
    kw = dict(block_out_channels=(32, 64, 64), attention_head_dim=(1, 2, 2), transformer_layers_per_block=(1, 1, 1),
              cross_attention_dim=64)
    real, fake = build_unet("tiny", **kw).eval(), build_unet("tiny", **kw).eval()
    for p in fake.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    n = 2
    c = Conditioning(x0=torch.randn(n, 4, 4, 4), source=torch.zeros(n, 4, 4, 4), embeds=torch.randn(n, 5, 384),
                     mask=torch.ones(n, 5, dtype=torch.long), uncond_embeds=torch.randn(n, 2, 384),
                     uncond_mask=torch.ones(n, 2, dtype=torch.long), time_ids=torch.tensor([[32.0, 32.0]] * n),
                     is_edit=torch.zeros(n, dtype=torch.bool), prompts=["a", "b"], source_pixels=torch.zeros(n, 3, 32, 32))
    sigma, noise = torch.tensor([0.3, 0.7]), torch.randn(n, 4, 4, 4)
    x0 = torch.randn(n, 4, 4, 4, requires_grad=True)
    distribution_matching_loss(x0, c, real, real, sigma, noise, 1.0, 1.0).backward()
    assert x0.grad.abs().max() < 1e-6
    x0.grad = None
    distribution_matching_loss(x0, c, real, fake, sigma, noise, 3.5, 1.5).backward()
    assert x0.grad.abs().max() > 1e-4 and torch.isfinite(x0.grad).all()
    # With a guidance interval the real score guides only the rows at or below it (sigma 0.3, not 0.7).
    x0.grad = None
    distribution_matching_loss(x0, c, real, real, sigma, noise, 3.5, 1.5, 0.5).backward()
    assert x0.grad[1].abs().max() < 1e-6 and x0.grad[0].abs().max() > 1e-4


def test_guided_velocity_evaluates_the_unconditional_branches_only_inside_the_interval():
    """Rows above the guidance interval, or whose scales make CFG the identity, take the conditional velocity and
    cost one U-Net row instead of three; rows inside it (the boundary included) get the full guided combination."""
    from dreamlite.models.presets import build_unet
    from dreamlite.training.objective import predict_velocity
    from dreamlite.training.sampling import guided_velocity

    torch.manual_seed(0)
    unet = build_unet("tiny", block_out_channels=(32, 64, 64), attention_head_dim=(1, 2, 2),
                      transformer_layers_per_block=(1, 1, 1), cross_attention_dim=64).eval()
    rows_per_call = []
    unet.register_forward_pre_hook(lambda module, args: rows_per_call.append(args[0].shape[0]))
    n = 3
    latents, source = torch.randn(n, 4, 4, 4), torch.randn(n, 4, 4, 4)
    embeds, mask = torch.randn(n, 5, 384), torch.ones(n, 5, dtype=torch.long)
    uncond, uncond_mask = torch.randn(n, 2, 384), torch.ones(n, 2, dtype=torch.long)
    time_ids, sigma = torch.tensor([[32.0, 32.0]] * n), torch.tensor([0.3, 0.7, 0.5])
    args = (unet, latents, source, sigma, embeds, mask, uncond, uncond_mask, time_ids, 3.5, 1.5)
    with torch.no_grad():
        limited, everywhere = guided_velocity(*args, max_sigma=0.5), guided_velocity(*args)
        conditional = predict_velocity(unet, latents, source, sigma, embeds, mask, time_ids)
    assert rows_per_call[:3] == [n + 2 * 2, 3 * n, n]
    torch.testing.assert_close(limited[[0, 2]], everywhere[[0, 2]], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(limited[1], conditional[1], atol=1e-5, rtol=1e-4)
    assert (limited[1] - everywhere[1]).abs().max() > 1e-3  # guidance would have changed that row
    # At text scale 1, CFG is the identity on generation rows: only edit rows (image scale 1.5) pay for it.
    is_edit, rows_per_call[:] = torch.tensor([True, False, True]), []
    with torch.no_grad():
        image_only = guided_velocity(*args[:-2], 1.0, 1.5, is_edit=is_edit)
        image_all_rows = guided_velocity(*args[:-2], 1.0, 1.5)
        unguided = guided_velocity(*args[:-2], 1.0, 1.0)
    assert rows_per_call == [n + 2 * 2, 3 * n, n]
    torch.testing.assert_close(image_only[1], conditional[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(image_only[[0, 2]], image_all_rows[[0, 2]], atol=1e-5, rtol=1e-4)
    assert (image_only[0] - conditional[0]).abs().max() > 1e-3
    torch.testing.assert_close(unguided, conditional, atol=1e-5, rtol=1e-4)


def test_dmd2_stage_changes_the_generator_and_exports_a_mobile_model(tmp_path):
    from dreamlite.pipeline import DreamLitePipeline, generators_from_seeds

    cfg = micro("dmd2", 5, "distill.fake_steps=2", "distill.disc_weight=1.0", "optim.ema_decay=0")
    trainer = build_trainer(cfg, str(tmp_path), progress=False)
    model = trainer.train()
    rows = metrics(tmp_path)
    for key in ("loss", "dmd", "gan_g", "fake_flow", "disc"):
        assert all(math.isfinite(r[key]) for r in rows), key
    assert rows[-1]["disc"] < rows[0]["disc"], [r["disc"] for r in rows]  # the classifier learns real vs generated
    pipe = DreamLitePipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.mode == "mobile"
    after = pipe("a photo of a red circle", generator=generators_from_seeds([0]), height=32, width=32,
                 output_type="pt").images
    pipe.unet = trainer.real_unet  # the base the generator started from
    before = pipe("a photo of a red circle", generator=generators_from_seeds([0]), height=32, width=32,
                  output_type="pt").images
    assert (after - before).abs().max() > 1e-3


def test_dmd2_resume_is_exact(tmp_path):
    cfg = micro("dmd2", 4, "distill.fake_steps=1")
    build_trainer(cfg, str(tmp_path / "a"), progress=False).train()
    build_trainer(cfg, str(tmp_path / "b"), stop_after=3, progress=False).train()  # "killed" after step 3
    build_trainer(cfg, str(tmp_path / "b"), resume="latest", progress=False).train()
    for name in ("model", "ema", "fake_score", "gan_head"):
        path = f"checkpoints/step-00000004/{name}.safetensors"
        a, b = load_file(tmp_path / "a" / path), load_file(tmp_path / "b" / path)
        assert all((a[k] == b[k]).all() for k in a), name


@pytest.mark.parametrize("task", ["generate", "edit"])
def test_generator_training_trajectory_is_the_mobile_pipeline(task, minilm_parts, source_image):
    """DMD2 trains the sampler that mode="mobile" runs: same sigmas, same conditioning, same Euler steps."""
    from dreamlite.data.transforms import to_tensor
    from dreamlite.pipeline import DreamLitePipeline
    from dreamlite.training.dmd2 import generator_x0
    from dreamlite.training.sampling import encode_batch, sampling_sigmas

    pipe = DreamLitePipeline(**minilm_parts, mode="mobile", text_encoder_name="minilm")
    pipe.set_progress_bar_config(disable=True)
    source = source_image.resize((32, 32))
    side = 32 // pipe.vae_scale_factor
    noise = torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0))
    prompt = "make the red circle blue" if task == "edit" else "a photo of two stars"
    expected = pipe(prompt, image=source if task == "edit" else None, height=32, width=32, latents=noise,
                    output_type="latent").images
    pixels = to_tensor(source).unsqueeze(0) if task == "edit" else torch.zeros(1, 3, 32, 32)
    batch = {"text": [prompt], "task": [task], "is_edit": torch.tensor([task == "edit"]), "source": pixels,
             "image": torch.zeros(1, 3, 32, 32)}
    c = encode_batch(_encoder(minilm_parts), pipe.vae, batch, "cpu")
    sigmas = sampling_sigmas(dict(pipe.scheduler.config), 4, side, side)
    with torch.no_grad():
        ours = generator_x0(pipe.unet, noise, c, sigmas, step=3, grad=False)
    assert torch.allclose(ours, expected, atol=1e-4), (ours - expected).abs().max()


def _encoder(parts):
    from dreamlite.models.text_encoders import prompt_encoder_for

    return prompt_encoder_for(parts["text_encoder"], parts["tokenizer"])


def test_post_training_samples_with_the_init_models_guidance(tmp_path):
    """ReFL trajectories and DMD2's real score use the base model's recorded guidance (chosen on validation),
    and a base-mode fine-tune passes it on; an explicit scale still wins."""
    import json

    first = build_trainer(micro("sft", 2), str(tmp_path / "a"), progress=False).train()
    index_path = tmp_path / "a" / "model" / "model_index.json"
    index = json.loads(index_path.read_text())
    assert index.get("guidance_scale") is None  # nothing recorded: the global defaults apply
    index["guidance_scale"], index["guidance_max_sigma"] = 1.25, 0.6
    index_path.write_text(json.dumps(index))
    carried = build_trainer(micro("sft", 2, f"init={first}"), str(tmp_path / "b"), progress=False).train()
    carried_index = json.loads((tmp_path / "b" / "model" / "model_index.json").read_text())
    assert (carried_index["guidance_scale"], carried_index["guidance_max_sigma"]) == (1.25, 0.6)
    for overrides, expected in (((), (1.25, 1.5, 0.6)), (("distill.guidance=2.0",), (2.0, 1.5, 0.6))):
        trainer = build_trainer(micro("dmd2", 1, f"init={carried}", *overrides), str(tmp_path / "c"), progress=False)
        trainer._setup()
        assert trainer.guidance == expected
    # The shipped DMD2 config distils at text guidance 1.0 (a guided real score breaks it); image guidance and
    # the interval still follow the init model.
    shipped = load_config(stage_config_path("tiny", "dmd2"),
                          [f"init={carried}", "data.size=32", "optim.steps=1", "optim.batch_size=4", MICRO_UNET])
    trainer = build_trainer(shipped, str(tmp_path / "f"), progress=False)
    trainer._setup()
    assert trainer.guidance == (1.0, 1.5, 0.6)
    from dreamlite.training.rewards import ShapesRewardNet

    ShapesRewardNet(task="generate", image_size=32, channels=(8, 8, 8)).save_pretrained(tmp_path / "reward")
    for overrides, expected in (((), (1.25, 1.5, 0.6)), (("feedback.image_guidance=1.2",), (1.25, 1.2, 0.6))):
        cfg = micro("refl", 1, f"init={carried}", f"feedback.generate_reward={tmp_path / 'reward'}", *overrides)
        trainer = build_trainer(cfg, str(tmp_path / "e"), progress=False)
        trainer._setup()
        assert trainer.guidance == expected
    trainer = build_trainer(micro("dmd2", 1), str(tmp_path / "d"), progress=False)
    trainer._setup()
    assert trainer.guidance == (3.5, 1.5, 1.0)
