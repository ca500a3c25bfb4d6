"""Rewards: pairs are exact and reproducible, training ranks correct renders first, adapters fail clearly."""

import json

import numpy as np
import pytest
import torch

from dreamlite.errors import DreamLiteError
from dreamlite.training.rewards import (
    EditRewardAdapter,
    HPSv3Reward,
    ShapesReward,
    ShapesRewardNet,
    TaskRewards,
    load_reward,
    perturb_scene,
    ranking_accuracy,
    reward_pairs,
    train_shapes_reward,
)
from dreamlite.world.scene import Obj, Scene


def test_perturbations_contradict_the_prompt():
    scene = Scene(64, "white", (Obj("circle", "red", 16, 32, 12), Obj("square", "blue", 48, 32, 12)))
    rng = np.random.default_rng(0)
    recolored = perturb_scene(rng, scene, "color")
    assert sorted((o.color, o.shape) for o in recolored.objects) != sorted((o.color, o.shape) for o in scene.objects)
    swapped = perturb_scene(rng, scene, "swap")
    assert {(o.color, o.shape) for o in swapped.objects} == {("blue", "circle"), ("red", "square")}
    mirrored = perturb_scene(rng, scene, "position", "left of")  # the circle is now right of the square
    assert mirrored.objects[0].cx > mirrored.objects[1].cx
    assert perturb_scene(rng, scene, "position") is None  # no stated relation: nothing to contradict
    with pytest.raises(DreamLiteError, match="unknown perturbation"):
        perturb_scene(rng, scene, "texture")


def test_pairs_are_reproducible_and_differ():
    a = reward_pairs("generate", 0, 5, 3, 32, per_prompt=2)
    b = reward_pairs("generate", 0, 5, 3, 32, per_prompt=2)
    assert [p["prompt"] for p in a] == [p["prompt"] for p in b] and len(a) == 6
    assert all((p["negative"] == q["negative"]).all() for p, q in zip(a, b))
    assert all(not np.array_equal(p["positive"], p["negative"]) for p in a)
    edits = reward_pairs("edit", 0, 0, 4, 32, kinds=["unedited"])
    assert all(np.array_equal(p["negative"], p["source"]) for p in edits)
    with pytest.raises(DreamLiteError, match="subset"):
        reward_pairs("generate", 0, 0, 1, 32, kinds=["unedited"])


def test_task_rewards_route_rows_and_keep_gradients():
    torch.manual_seed(0)
    gen = ShapesReward(ShapesRewardNet(task="generate", image_size=16, channels=(8, 8, 8)))
    edit = ShapesReward(ShapesRewardNet(task="edit", image_size=16, channels=(8, 8, 8)), gen.encoder)
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    sources = torch.rand(4, 3, 32, 32)
    is_edit = torch.tensor([False, True, False, True])
    prompts = ["a red circle", "make the red circle blue", "two stars", "remove the star"]
    scores, scored = TaskRewards(gen, edit)(images, prompts, sources, is_edit)
    assert scored.all()
    assert scores[0].item() == pytest.approx(gen(images[:1], prompts[:1]).item(), abs=1e-5)
    assert scores[1].item() == pytest.approx(edit(images[1:2], prompts[1:2], sources[1:2]).item(), abs=1e-5)
    scores.sum().backward()
    assert images.grad.abs().sum() > 0
    only_gen, scored = TaskRewards(gen, None)(images, prompts, sources, is_edit)
    assert scored.tolist() == [True, False, True, False] and (only_gen[is_edit] == 0).all()
    with pytest.raises(DreamLiteError, match="source images"):
        edit(images, prompts)


def test_trained_edit_reward_ranks_the_edit_above_the_unedited_source(tmp_path):
    metrics = train_shapes_reward("edit", str(tmp_path), steps=30, size=32, lr=3e-3, eval_pairs=64,
                                  channels=(16, 32, 48), kinds=["unedited"], progress=False)
    assert metrics["last_loss"] < 0.5 * metrics["first_loss"], metrics
    assert metrics["held_out_accuracy"]["unedited"] >= 0.85, metrics  # held-out seeds, every edit type
    reward = load_reward(str(tmp_path), task="edit")
    pairs = reward_pairs("edit", 123, 0, 16, 32, kinds=["unedited"])
    assert ranking_accuracy(reward, pairs)["overall"] >= 0.85
    with pytest.raises(DreamLiteError, match="is a edit reward"):
        load_reward(str(tmp_path), task="generate")


def test_paper_reward_adapters_fail_clearly_without_weights(tmp_path):
    with pytest.raises(DreamLiteError, match="HPSv3 weights folder not found"):
        HPSv3Reward(str(tmp_path / "missing"))
    with pytest.raises(DreamLiteError, match="EditReward weights folder not found"):
        load_reward(f"editreward:{tmp_path / 'missing'}")
    with pytest.raises(DreamLiteError, match="HPSv3.safetensors"):
        HPSv3Reward(str(tmp_path))  # a folder without the checkpoint
    (tmp_path / "HPSv3.safetensors").write_bytes(b"")
    with pytest.raises(DreamLiteError, match="package `hpsv3`"):  # not installed here
        HPSv3Reward(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.yaml").write_text("rm_head_type: ranknet\n")
    with pytest.raises(DreamLiteError, match="package `EditReward`"):
        EditRewardAdapter(str(tmp_path))
    with pytest.raises(DreamLiteError, match="reward folder not found"):
        load_reward(str(tmp_path / "nothing"))


def test_train_reward_command_writes_a_loadable_reward_and_rejects_bad_input(tmp_path, capsys):
    from dreamlite.cli import main

    out = tmp_path / "reward"
    args = ["train-reward", "--task", "edit", "--size", "32", "--eval-pairs", "16", "--no-progress"]
    assert main([*args, "--out", str(out / "bad"), "--batch-size", "6", "--steps", "2"]) == 2
    assert "multiple of 4" in capsys.readouterr().err and not (out / "bad").exists()
    assert main([*args[:-3], "--eval-pairs", "0", "--out", str(out / "bad"), "--batch-size", "8", "--steps", "1"]) == 2
    assert "eval_pairs >= 1" in capsys.readouterr().err and not (out / "bad").exists()  # was: NaN in the metrics
    assert main([*args, "--out", str(out), "--batch-size", "8", "--steps", "3"]) == 0
    metrics = json.loads((out / "reward_metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["seconds"] > 0 and metrics["held_out_accuracy"]["pairs"] == 16
    assert load_reward(str(out), task="edit")(torch.zeros(1, 3, 32, 32), ["remove the star"], torch.zeros(1, 3, 32, 32)).shape == (1,)
