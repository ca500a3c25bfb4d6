"""A micro configuration of each trainable stage: the loss falls, and resuming is exact."""

import csv
import itertools
import re

import pytest
from safetensors.torch import load_file

from dreamlite.errors import DreamLiteError
from dreamlite.training.config import load_config
from dreamlite.training.trainer import Trainer

MICRO_UNET = ("unet_overrides={block_out_channels: [32, 64, 64], attention_head_dim: [1, 2, 2], "
              "transformer_layers_per_block: [1, 1, 1], cross_attention_dim: 64}")


def micro(stage, steps, *extra):
    return load_config(None, [f"stage={stage}", "data.size=32", f"data.task={'t2i' if stage == 'vae' else stage}",
                              f"optim.steps={steps}", "optim.batch_size=4", "optim.lr=2e-3", "optim.warmup_steps=2",
                              "log.every=1", "log.checkpoint_every=3", MICRO_UNET, *extra])


def losses(out):
    with open(out / "metrics.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("stage", ["vae", "t2i", "edit", "joint"])
def test_loss_falls(stage, tmp_path):
    model = Trainer(micro(stage, 24), str(tmp_path), progress=False).train()
    curve = losses(tmp_path)
    assert sum(curve[-6:]) / 6 < 0.9 * sum(curve[:6]) / 6, curve
    assert (tmp_path / "model" / ("vae" if stage == "vae" else "unet")).is_dir() and model


def test_resume_after_interruption_is_exact(tmp_path):
    Trainer(micro("joint", 7), str(tmp_path / "a"), progress=False).train()
    Trainer(micro("joint", 7), str(tmp_path / "b"), stop_after=3, progress=False).train()  # "killed" after step 3
    Trainer(micro("joint", 7), str(tmp_path / "b"), resume="latest", progress=False).train()
    for name in ("checkpoints/step-00000007/model.safetensors", "checkpoints/step-00000007/ema.safetensors"):
        a, b = load_file(tmp_path / "a" / name), load_file(tmp_path / "b" / name)
        assert all((a[k] == b[k]).all() for k in a), name
    # The run's folder records its resolved config, and reading it back gives the same run.
    assert load_config(str(tmp_path / "b" / "config.yaml")) == micro("joint", 7)


def test_every_checkpoint_kept_and_its_raw_or_ema_weights_readable(tmp_path):
    """log.keep=0 keeps every checkpoint; the last one's EMA weights are the exported U-Net, its raw weights differ."""
    from dreamlite.training.checkpoint import checkpoint_weights, list_checkpoints

    Trainer(micro("t2i", 6, "log.keep=0", "optim.ema_decay=0.9"), str(tmp_path), progress=False).train()
    kept = list_checkpoints(str(tmp_path / "checkpoints"))
    assert [p[-8:] for p in kept] == ["00000003", "00000006"]
    exported = load_file(tmp_path / "model" / "unet" / "diffusion_pytorch_model.safetensors")
    ema, raw = checkpoint_weights(kept[-1], "ema"), checkpoint_weights(kept[-1], "model")
    assert set(ema) == set(exported) and all((ema[k] == exported[k]).all() for k in ema)
    assert any((raw[k] != ema[k]).any() for k in raw)
    with pytest.raises(DreamLiteError, match="no 'optimizer' weights"):
        checkpoint_weights(kept[-1], "optimizer")


def test_config_typos_are_errors():
    with pytest.raises(DreamLiteError, match="did you mean 'lr'"):
        load_config(None, ["optim.lrr=1e-3"])
    with pytest.raises(DreamLiteError, match="must be a number"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(DreamLiteError, match="unknown stage"):
        load_config(None, ["stage=pretrain"])


@pytest.mark.parametrize("override,message", [
    ("log.every=0", "log.every must be >= 1"),  # was a ZeroDivisionError after the first step
    ("log.checkpoint_every=0", "log.checkpoint_every must be >= 1"),
    ("log.keep=-1", "log.keep must be >= 0"),
    ("optim.betas=5", "optim.betas must be a list of 2 numbers"),
    ("optim.betas=[0.9, fast]", "must be a number"),
    ("optim.lr_schedule=bogus", "unknown optim.lr_schedule"),
    ("optim.mixed_precision=fp17", "optim.mixed_precision must be no, fp16 or bf16"),
    ("data.edit_fraction=5", "data.edit_fraction must be in [0, 1]"),
])
def test_config_values_out_of_range_are_errors(override, message):
    with pytest.raises(DreamLiteError, match=re.escape(message)):
        load_config(None, [override])


def test_config_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- stage: t2i\n")
    with pytest.raises(DreamLiteError, match="a config is a mapping"):
        load_config(str(path))


def test_resume_from_an_incomplete_or_foreign_checkpoint_is_an_error(tmp_path):
    """A folder that only looks like a checkpoint, or one of another stage, fails with one message, not a traceback."""
    import shutil

    from dreamlite.training.checkpoint import resolve_checkpoint

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "state.json").write_text('{"step": 5, "micro_batches": 5, "stage": "t2i"}')
    with pytest.raises(DreamLiteError, match="missing model.safetensors, optimizer.pt"):
        resolve_checkpoint(str(tmp_path), str(fake))
    Trainer(micro("t2i", 3), str(tmp_path / "t2i"), progress=False).train()
    real = tmp_path / "t2i" / "checkpoints" / "step-00000003"
    assert sorted(p.name for p in (tmp_path / "t2i" / "checkpoints").iterdir()) == ["step-00000003"]  # no temporaries
    with pytest.raises(DreamLiteError, match="from a 't2i' stage, not 'edit'"):
        Trainer(micro("edit", 6), str(tmp_path / "edit"), resume=str(real), progress=False).train()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(real, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(DreamLiteError, match="cannot read checkpoint"):
        Trainer(micro("t2i", 6), str(tmp_path / "again"), resume=str(corrupt), progress=False).train()


def test_channel_conditioning_ablation_trains_and_samples(tmp_path):
    """The Pix2Pix-style arm: a spatial U-Net widened with zero input channels computes what it did before,
    trains on (noisy, condition) channel stacks and samples through the same pipeline."""
    import torch

    from dreamlite.models.canvas import conditioning_of
    from dreamlite.models.presets import build_unet
    from dreamlite.pipeline import DreamLitePipeline
    from dreamlite.training.objective import widen_for_channel_conditioning

    torch.manual_seed(0)
    unet = build_unet("tiny", block_out_channels=(32, 64, 64), attention_head_dim=(1, 2, 2),
                      transformer_layers_per_block=(1, 1, 1), cross_attention_dim=64).eval()
    wide = widen_for_channel_conditioning(unet).eval()
    assert conditioning_of(unet) == "spatial" and conditioning_of(wide) == "channel"
    x, e = torch.randn(1, 4, 8, 8), torch.randn(1, 3, 384)
    kw = dict(timestep=torch.tensor([500.0]), encoder_hidden_states=e, added_cond_kwargs={"time_ids": torch.tensor([[32.0, 32.0]])})
    with torch.no_grad():
        assert torch.allclose(unet(x, **kw).sample, wide(torch.cat([x, torch.zeros_like(x)], 1), **kw).sample, atol=1e-5)

    Trainer(micro("edit", 4, "objective.conditioning=channel"), str(tmp_path), progress=False).train()
    pipe = DreamLitePipeline.from_pretrained(str(tmp_path / "model"))
    assert pipe.unet.config.in_channels == 8
    from PIL import Image

    image = pipe("make it red", image=Image.new("RGB", (32, 32), "white"), num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (32, 32, 3)
    with pytest.raises(DreamLiteError, match="objective.conditioning=channel"):
        Trainer(micro("edit", 1, f"init={tmp_path / 'model'}"), str(tmp_path / "again"), progress=False).train()


def test_vae_stage_normalises_its_latents(tmp_path):
    """The exported VAE maps the world to zero-mean, unit-std latents (what the flow's unit noise assumes); a
    decoder-only fine-tune keeps those factors, so U-Nets trained on the latents stay valid."""
    import itertools
    import json

    import torch
    from diffusers import AutoencoderTiny

    from dreamlite.data.shapes import ShapesStream
    from dreamlite.data.transforms import collate
    from dreamlite.models.vae import encode_latents

    Trainer(micro("vae", 6), str(tmp_path / "vae"), progress=False).train()
    vae = AutoencoderTiny.from_pretrained(str(tmp_path / "vae" / "model" / "vae"))
    assert vae.config.scaling_factor != 1.0
    pixels = collate(list(itertools.islice(iter(ShapesStream("t2i", 32, 99)), 128)))["image"]  # unseen images
    with torch.no_grad():
        latents = encode_latents(vae, pixels)
    assert abs(latents.mean().item()) < 0.2 and 0.8 < latents.std().item() < 1.25

    Trainer(micro("vae", 2, f"vae={tmp_path / 'vae' / 'model'}", "freeze_vae_encoder=true"), str(tmp_path / "dec"),
            progress=False).train()
    first = json.load(open(tmp_path / "vae" / "model" / "vae" / "config.json"))
    second = json.load(open(tmp_path / "dec" / "model" / "vae" / "config.json"))
    assert (first["scaling_factor"], first["shift_factor"]) == (second["scaling_factor"], second["shift_factor"])


def test_latent_noise_perturbs_only_what_the_decoder_sees(tmp_path):
    """objective.latent_noise (decoder fine-tuning): off, the decoder gets the encoder's latents; on, they carry
    noise of at most that level in normalised units; a negative level or another stage is an error."""
    import torch

    from dreamlite.models.presets import build_vae

    vae = build_vae("tiny")
    vae.register_to_config(scaling_factor=4.0)
    vae.save_pretrained(str(tmp_path / "vae"))
    seen = {}
    for level in (0.0, 0.5):
        trainer = Trainer(micro("vae", 1, f"vae={tmp_path / 'vae'}", "freeze_vae_encoder=true",
                                f"objective.latent_noise={level}"), str(tmp_path / str(level)), progress=False)
        trainer._setup()
        batch = next(trainer._data())
        def spy(z, decode=trainer.vae.decode, level=level):  # records what the decoder is given
            seen[level] = z
            return decode(z)

        trainer.vae.decode = spy
        trainer._vae_loss(batch)
        with torch.no_grad():
            seen[f"clean{level}"] = trainer.vae.encode(batch["image"]).latents
    assert torch.equal(seen[0.0], seen["clean0.0"])  # off: the decoder sees the encoder's latents
    offset = (seen[0.5] - seen["clean0.5"]) * 4.0  # in normalised units
    assert 0 < offset.std(dim=(1, 2, 3)).max() < 0.5 * 1.1
    for bad, message in ((["objective.latent_noise=-1"], ">= 0"), (["objective.latent_noise=0.3"], "decoder fine-tuning")):
        with pytest.raises(DreamLiteError, match=message):
            load_config(None, ["stage=vae", *bad])


def test_l1_weight_weighs_the_l1_term_of_the_vae_loss(tmp_path):
    """objective.l1_weight: the reconstruction loss is MSE + l1_weight * L1 of one and the same reconstruction."""
    import torch
    import torch.nn.functional as F

    loss = {}
    for weight in (0.0, 0.1, 2.0):
        trainer = Trainer(micro("vae", 1, f"objective.l1_weight={weight}"), str(tmp_path / str(weight)), progress=False)
        trainer._setup()
        batch = next(trainer._data())
        with torch.no_grad():
            loss[weight] = trainer._vae_loss(batch).item()
            recon = trainer.vae.decode(trainer.vae.encode(batch["image"]).latents).sample
        l1 = F.l1_loss(recon, batch["image"]).item()
    assert loss[0.1] == pytest.approx(loss[0.0] + 0.1 * l1, rel=1e-4)
    assert loss[2.0] == pytest.approx(loss[0.0] + 2.0 * l1, rel=1e-4)
    with pytest.raises(DreamLiteError, match=">= 0"):
        load_config(None, ["stage=vae", "objective.l1_weight=-0.5"])


def test_keep_weight_weights_the_cells_an_edit_leaves_unchanged(tmp_path):
    """objective.keep_weight, an explicit copy signal: kept source, unchanged cell -> that weight, else 1."""
    import torch

    from dreamlite.models.vae import vae_scale_factor
    from dreamlite.training.objective import flow_matching_loss, unchanged_cells

    no_drop = ["objective.drop_text=0", "objective.drop_image=0", "objective.drop_both=0"]
    trainer = Trainer(micro("edit", 1, "objective.keep_weight=4", *no_drop), str(tmp_path), progress=False)
    trainer._setup()
    batch = next(trainer._data())
    x0, *_, weights = trainer._conditioning(batch)
    same = unchanged_cells(batch["image"], batch["source"], vae_scale_factor(trainer.vae))
    assert weights.shape == (x0.shape[0], 1, *x0.shape[-2:])
    assert same.any() and (~same).any()  # edits change part of a scene
    assert torch.equal(weights, torch.where(same, 4.0, 1.0))

    plain = Trainer(micro("edit", 1, *no_drop), str(tmp_path / "plain"), progress=False)
    plain._setup()
    assert plain._conditioning(batch)[-1] is None  # weight 1: plain MSE, as before

    class Zero(torch.nn.Module):  # predicts v = 0, so the loss is the weighted mean of (noise - x0)^2
        def forward(self, canvas, **kwargs):
            return (torch.zeros_like(canvas),)

    noise, sigmas = torch.randn_like(x0), torch.full((x0.shape[0],), 0.5)
    args = (Zero(), x0, torch.zeros_like(x0), None, None, None, sigmas, noise)
    err = (noise - x0) ** 2
    assert torch.allclose(flow_matching_loss(*args), err.mean())
    assert torch.allclose(flow_matching_loss(*args, weights=weights), (weights * err).mean())
    with pytest.raises(DreamLiteError, match="keep_weight"):
        load_config(None, ["objective.keep_weight=-1"])


def test_colour_weight_ties_the_first_latent_channels_to_pooled_colour(tmp_path):
    """objective.colour_weight (VAE from scratch): the same steps with the term put the pooled image into the first
    three raw latent channels far more closely than without it; it is refused where it cannot shape the latents."""
    import torch
    import torch.nn.functional as F

    from dreamlite.models.vae import vae_scale_factor

    errors = {}
    for weight in (0.0, 10.0):
        trainer = Trainer(micro("vae", 12, f"objective.colour_weight={weight}", "optim.lr=5e-3"),
                          str(tmp_path / str(weight)), progress=False)
        trainer.train()
        batch = next(trainer._data())
        with torch.no_grad():
            raw = trainer.vae.encode(batch["image"]).latents[:, :3]  # the encoder's own units
        errors[weight] = F.mse_loss(raw, F.avg_pool2d(batch["image"], vae_scale_factor(trainer.vae))).item()
    assert errors[10.0] < 0.5 * errors[0.0]
    for bad, message in ((["stage=vae", "objective.colour_weight=-1"], ">= 0"),
                         (["stage=t2i", "objective.colour_weight=1"], "trainable encoder"),
                         (["stage=vae", "freeze_vae_encoder=true", "objective.colour_weight=1"], "trainable encoder")):
        with pytest.raises(DreamLiteError, match=message):
            load_config(None, bad)
    with pytest.raises(DreamLiteError, match="3 latent channels"):
        Trainer(micro("vae", 1, "objective.colour_weight=1", "vae_overrides={latent_channels: 2}"), str(tmp_path / "c2"),
                progress=False)._setup()


def test_shape_weight_ties_two_latent_channels_to_the_shape_codes(tmp_path):
    """objective.shape_weight: the same steps with the term put each shape's code into raw latent channels 3-4 far
    more closely than without it; it needs five latent channels and scene labels, and is refused elsewhere."""
    import torch
    import torch.nn.functional as F

    from dreamlite.data.shapes import ShapesStream
    from dreamlite.data.transforms import collate
    from dreamlite.models.vae import vae_scale_factor
    from dreamlite.training.objective import shape_code_map

    held_out = collate(list(itertools.islice(ShapesStream("t2i", 32, seed=99, with_shapes=True), 8)))
    errors = {}
    for weight in (0.0, 10.0):
        trainer = Trainer(micro("vae", 12, f"objective.shape_weight={weight}", "optim.lr=5e-3",
                                "vae_overrides={latent_channels: 5}"), str(tmp_path / str(weight)), progress=False)
        trainer.train()
        with torch.no_grad():
            raw = trainer.vae.encode(held_out["image"]).latents[:, 3:5]  # the encoder's own units
        target = shape_code_map(held_out["shape_coverage"], vae_scale_factor(trainer.vae))
        errors[weight] = F.mse_loss(raw, target).item()
    assert errors[10.0] < 0.5 * errors[0.0]
    for bad, message in ((["stage=vae", "objective.shape_weight=-1"], ">= 0"),
                         (["stage=t2i", "objective.shape_weight=1"], "trainable encoder"),
                         (["stage=vae", "objective.shape_weight=1", "data.source=imagefolder", "data.path=x"],
                          "scene labels")):
        with pytest.raises(DreamLiteError, match=message):
            load_config(None, bad)
    with pytest.raises(DreamLiteError, match="at least 5"):
        Trainer(micro("vae", 1, "objective.shape_weight=1"), str(tmp_path / "c4"), progress=False)._setup()


def test_a_new_unet_takes_the_vaes_latent_channels(tmp_path):
    """A VAE with five latent channels gets a five-channel U-Net without being told; a U-Net that disagrees with
    its VAE is refused before training."""
    trainer = Trainer(micro("t2i", 1, "vae_overrides={latent_channels: 5}"), str(tmp_path / "c5"), progress=False)
    trainer._setup()
    unet = trainer.accelerator.unwrap_model(trainer.model)
    assert (unet.config.in_channels, unet.config.out_channels) == (5, 5)
    with pytest.raises(DreamLiteError, match="predicts 4 latent channels, the VAE has 5"):
        Trainer(micro("t2i", 1, "vae_overrides={latent_channels: 5}", "unet_overrides={in_channels: 4, out_channels: 4}"),
                str(tmp_path / "bad"), progress=False)._setup()


def test_target_canvas_trains_generation_on_half_the_width(tmp_path):
    """objective.canvas=target: the t2i stage's U-Net sees the noisy target alone (half the in-context width), the
    loss still falls, and the exported model samples on the paper's (target | zeros) canvas. Other stages refuse it."""
    trainer = Trainer(micro("t2i", 24, "objective.canvas=target"), str(tmp_path), progress=False)
    trainer._setup()
    widths = []
    unet = trainer.accelerator.unwrap_model(trainer.model)
    hook = unet.conv_in.register_forward_hook(lambda module, args, out: widths.append(args[0].shape[-1]))
    trainer._flow_loss(next(trainer._data()))
    hook.remove()
    assert widths == [8]  # 32 px through the 4x VAE: an 8x8 target, not the 8x16 canvas
    Trainer(micro("t2i", 24, "objective.canvas=target"), str(tmp_path / "run"), progress=False).train()
    curve = losses(tmp_path / "run")
    assert sum(curve[-6:]) / 6 < 0.9 * sum(curve[:6]) / 6, curve

    from dreamlite.pipeline import DreamLitePipeline

    pipe = DreamLitePipeline.from_pretrained(str(tmp_path / "run" / "model"))
    sampled = []
    hook = pipe.unet.conv_in.register_forward_hook(lambda module, args, out: sampled.append(args[0].shape[-1]))
    image = pipe("a photo of a red circle", height=32, width=32, num_inference_steps=2, guidance_scale=1, output_type="np").images[0]
    assert image.shape == (32, 32, 3)
    hook.remove()
    assert sampled == [16, 16]  # sampling keeps the in-context canvas
    for stage in ("edit", "joint"):
        with pytest.raises(DreamLiteError, match="objective.canvas=target"):
            micro(stage, 1, "objective.canvas=target").validate()
    with pytest.raises(DreamLiteError, match="in_context or target"):
        micro("t2i", 1, "objective.canvas=half").validate()


def test_a_run_whose_data_has_nothing_usable_fails_before_writing_anything(tmp_path):
    """Every row bad: one line, and no config.yaml or metrics.csv left in the run folder (it used to spin forever)."""
    import json

    data = tmp_path / "data"
    data.mkdir()
    (data / "metadata.jsonl").write_text(json.dumps({"file_name": "missing.png", "text": "a red circle"}))
    for stage, message in (("t2i", "no usable sample"), ("edit", "stage edit needs edit triplets")):
        with pytest.raises(DreamLiteError, match=message):
            Trainer(micro(stage, 2, "data.source=imagefolder", f"data.path={data}"), str(tmp_path / "run"),
                    progress=False).train()
    assert not (tmp_path / "run" / "config.yaml").exists() and not (tmp_path / "run" / "metrics.csv").exists()
