"""Recipes chain stages (each from the previous model), validate every config first, skip finished stages."""

import json

import pytest

from dreamlite.cli import main
from dreamlite.errors import DreamLiteError
from dreamlite.training.recipes import plan, run_recipe

MICRO = ["data.size=32", "optim.batch_size=2", "optim.steps=2", "optim.warmup_steps=1", "log.checkpoint_every=1",
         "unet_overrides={block_out_channels: [32, 64, 64], attention_head_dim: [1, 2, 2], "
         "transformer_layers_per_block: [1, 1, 1], cross_attention_dim: 64}",
         "vae_overrides={encoder_block_out_channels: [8, 8, 8], decoder_block_out_channels: [8, 8, 8]}"]


def test_tpj_plan_chains_stages(tmp_path):
    steps = plan("tpj", "tiny", str(tmp_path), ["t2i.optim.steps=7", "optim.lr=1e-4"])
    assert [s for s, _, _ in steps] == ["vae", "t2i", "edit", "joint"]
    cfg = {s: c for s, _, c in steps}
    assert cfg["t2i"].vae == str(tmp_path / "vae" / "model") and cfg["t2i"].init is None
    assert cfg["edit"].init == str(tmp_path / "t2i" / "model") and cfg["joint"].init == str(tmp_path / "edit" / "model")
    assert cfg["t2i"].optim.steps == 7 and cfg["edit"].optim.steps != 7
    assert all(c.optim.lr == 1e-4 for c in cfg.values())


def test_bad_recipes_fail_before_training(tmp_path):
    with pytest.raises(DreamLiteError, match="unknown recipe"):
        plan("pretrain", "tiny", str(tmp_path), [])
    with pytest.raises(DreamLiteError, match="did you mean"):
        plan("tpj", "tiny", str(tmp_path), ["edit.optim.lrr=1"])
    with pytest.raises(DreamLiteError, match="does not run"):
        plan("t2i-joint", "tiny", str(tmp_path), ["edit.optim.steps=1"])
    with pytest.raises(DreamLiteError, match="--init"):
        plan("dmd2", "tiny", str(tmp_path), [])
    with pytest.raises(DreamLiteError, match="reward"):
        plan("refl", "tiny", str(tmp_path), [], init=str(tmp_path))
    assert main(["train", "--recipe", "tpj", "--config", "x.yaml"]) == 2
    (tmp_path / "vae-only" / "vae").mkdir(parents=True)
    for init in (tmp_path / "nosuch", tmp_path / "vae-only"):  # was: a traceback, or a random U-Net trained silently
        assert main(["train", "--recipe", "sft", "--init", str(init), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_recipe_runs_resumes_and_skips_finished_stages(tmp_path, capsys):
    out = str(tmp_path / "run")
    model = run_recipe("t2i-joint", "tiny", out, MICRO, progress=False)
    log = json.load(open(tmp_path / "run" / "recipe.json"))
    assert set(log["stages"]) == {"vae", "t2i", "joint"} and log["wall_seconds_since_start"] > 0
    assert (tmp_path / "run" / "joint" / "model" / "model_index.json").exists() and model.endswith("joint/model")
    run_recipe("t2i-joint", "tiny", out, MICRO, progress=False)  # everything finished: nothing to do
    assert capsys.readouterr().out.count("finished earlier, skipped") == 3
    assert json.load(open(tmp_path / "run" / "recipe.json"))["recipe"] == "t2i-joint"  # named once
    run_recipe("tpj", "tiny", out, MICRO, progress=False)  # another recipe into the same folder (trains only edit)
    assert json.load(open(tmp_path / "run" / "recipe.json"))["recipe"] == "t2i-joint, tpj"
    (tmp_path / "run" / "joint" / "model" / "model_index.json").unlink()  # an unfinished stage with checkpoints
    with pytest.raises(DreamLiteError, match="--resume latest"):
        run_recipe("t2i-joint", "tiny", out, MICRO, progress=False)
