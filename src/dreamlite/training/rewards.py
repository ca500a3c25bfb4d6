"""Differentiable rewards behind one interface: `reward(images, prompts, sources=None) -> scores`.

`images` (and `sources` for editing) are float tensors [B, 3, H, W] in [-1, 1] that may carry gradients
(ReFL backpropagates through the score); the result is one score per image, higher is better.

Built in: `ShapesReward`, a small conv net per task trained by the project on the Shapes world. Every
Shapes image comes from a scene graph, so a prompt's correct render is known exactly and negatives are
renders of perturbed scenes (wrong colour, shape, count, position, background, swapped attributes) or, for
editing, the unedited source, a perturbed target or the target of a different edit; optionally model
samples too. It is trained with a pairwise (Bradley-Terry) loss and reports its held-out ranking
accuracy. Adapters: `HPSv3Reward` (generation) and `EditRewardAdapter` (editing), the paper's reward
models, scoring with their public inferencers from a local weights folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from ..atomic import atomic_dir, check_replaceable
from ..errors import DreamLiteError
from ..world.captions import GENEVAL_TAGS, geneval_record, scene_for_record, training_caption
from ..world.edits import EDIT_TYPES, apply_edit, sample_edit
from ..world.render import render
from ..world.scene import Scene, fits, place_object, sample_scene
from ..world.spec import load_spec

TASKS = ("generate", "edit")
METRICS_FILE = "reward_metrics.json"


# ============================================================================ interface
class RewardModel(nn.Module):
    """Base class: score images (in [-1, 1]) against prompts, and for editing against source images."""

    task: str = "generate"

    def forward(self, images: torch.Tensor, prompts: Sequence[str], sources: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def check(self, images, prompts, sources):
        if images.ndim != 4 or images.shape[1] != 3:
            raise DreamLiteError(f"reward images must be [B, 3, H, W], got shape {tuple(images.shape)}")
        if len(prompts) != images.shape[0]:
            raise DreamLiteError(f"got {len(prompts)} prompts for {images.shape[0]} images")
        if self.task == "edit" and (sources is None or sources.shape != images.shape):
            raise DreamLiteError("an edit reward needs source images of the same shape as the edited images")


class TaskRewards(nn.Module):
    """A generation and an edit reward as one: each row is scored by its task's reward (0 if it has none)."""

    def __init__(self, generate: RewardModel | None = None, edit: RewardModel | None = None):
        super().__init__()
        if generate is None and edit is None:
            raise DreamLiteError("give at least one reward (a generation or an edit reward)")
        self.generate, self.edit = generate, edit

    def forward(self, images, prompts, sources, is_edit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, scored): scores [B] (0 where unscored) and a bool mask of the rows a reward scored."""
        scores = images.new_zeros(images.shape[0])
        scored = torch.zeros(images.shape[0], dtype=torch.bool, device=images.device)
        is_edit = is_edit.to(images.device)
        for reward, rows in ((self.generate, ~is_edit), (self.edit, is_edit)):
            if reward is None or not rows.any():
                continue
            idx = rows.nonzero().flatten()
            part = reward(images[idx], [prompts[i] for i in idx.tolist()],
                          sources[idx] if reward.task == "edit" else None)
            scores = scores.index_put((idx,), part.to(scores.dtype))
            scored[idx] = True
        return scores, scored


# ============================================================================ the Shapes reward network
class _FiLMBlock(nn.Module):
    def __init__(self, cin: int, cout: int, text_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.GroupNorm(8, cout)
        self.film = nn.Linear(text_dim, 2 * cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=2, padding=1)

    def forward(self, x, text):
        h = self.norm(self.conv1(x))
        scale, shift = self.film(text)[:, :, None, None].chunk(2, dim=1)
        return F.silu(self.conv2(F.silu(h * (1 + scale) + shift)))


class ShapesRewardNet(ModelMixin, ConfigMixin):
    """Conv net conditioned on a sentence embedding by FiLM; coordinates as extra channels (positions matter).

    Editing sees (edited, source, edited - source), so an unchanged image or a change elsewhere is visible.
    """

    @register_to_config
    def __init__(self, task: str = "generate", image_size: int = 64, text_dim: int = 384,
                 channels: tuple = (32, 64, 96)):
        super().__init__()
        cin = (9 if task == "edit" else 3) + 2
        blocks = []
        for cout in channels:
            blocks.append(_FiLMBlock(cin, cout, text_dim))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.text = nn.Sequential(nn.Linear(text_dim, text_dim), nn.SiLU())
        # Prompt embeddings of one world are nearly collinear; standardising them (statistics set once from
        # the training prompts) makes the words that differ, colours, shapes, counts, visible to FiLM.
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.register_buffer("text_std", torch.ones(text_dim))
        self.head = nn.Sequential(nn.Linear(2 * cin + text_dim, 128), nn.SiLU(), nn.Linear(128, 1))

    def forward(self, images, text_embeds, sources=None):
        if self.config.task == "edit":
            images = torch.cat([images, sources, images - sources], dim=1)
        b, _, h, w = images.shape
        ys = torch.linspace(-1, 1, h, device=images.device, dtype=images.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=images.device, dtype=images.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
        x = torch.cat([images, xs, ys], dim=1)
        text = self.text((text_embeds - self.text_mean) / self.text_std)
        for block in self.blocks:
            x = block(x, text)
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(torch.cat([pooled, text], dim=1)).squeeze(1)


class SentenceEncoder(nn.Module):
    """Masked mean of MiniLM token states: one frozen vector per prompt (no task prefix), cached.

    The encoder dominates a small reward's cost on CPU, and training and ReFL repeat prompts.
    """

    def __init__(self, text_encoder=None, tokenizer=None, cache_size: int = 8192):
        super().__init__()
        if text_encoder is None:
            from ..models.text_encoders import load_minilm

            text_encoder, tokenizer = load_minilm()
        self.text_encoder, self.tokenizer = text_encoder.requires_grad_(False).eval(), tokenizer
        self.cache: dict = {}
        self.cache_size = cache_size

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(p for p in prompts if p not in self.cache))
        if missing:
            inputs = self.tokenizer(missing, padding=True, truncation=True, max_length=128, return_tensors="pt")
            inputs = inputs.to(self.text_encoder.device)
            states = self.text_encoder(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
            vectors = (states * mask).sum(1) / mask.sum(1).clamp_min(1)
            if len(self.cache) + len(missing) > self.cache_size:
                self.cache.clear()
            self.cache.update(zip(missing, vectors.cpu()))
        return torch.stack([self.cache[p] for p in prompts])


class ShapesReward(RewardModel):
    """A trained `ShapesRewardNet` plus its text encoder, as a differentiable reward."""

    def __init__(self, net: ShapesRewardNet, encoder: SentenceEncoder | None = None):
        super().__init__()
        self.net, self.encoder, self.task = net, encoder or SentenceEncoder(), net.config.task

    @classmethod
    def from_pretrained(cls, path: str, encoder: SentenceEncoder | None = None) -> ShapesReward:
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise DreamLiteError(f"not a Shapes reward folder (no config.json): {path}")
        net = ShapesRewardNet.from_pretrained(path, use_safetensors=True)
        return cls(net.requires_grad_(False).eval(), encoder)

    def forward(self, images, prompts, sources=None):
        self.check(images, prompts, sources)
        size = self.net.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            if sources is not None:
                sources = F.interpolate(sources, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        text = self.encoder(prompts).to(images.device, images.dtype)
        return self.net(images, text, sources)


# ============================================================================ pairs: correct vs perturbed renders
_POSITION_WORDS = ("left of", "right of", "above", "below")
_GENEVAL_KINDS = {"single_object": ("shape",), "two_object": ("shape",), "counting": ("count", "shape"),
                  "colors": ("color", "shape"), "position": ("position", "shape"), "color_attr": ("color", "swap")}


def perturb_scene(rng, scene: Scene, kind: str, relation: str | None = None) -> Scene | None:
    """A scene that contradicts a prompt describing `scene`, by one kind of change (None if impossible)."""
    spec = load_spec()
    objs = list(scene.objects)
    if not objs:
        return None
    i = int(rng.integers(len(objs)))
    o = objs[i]
    if kind == "color":
        colors = [c for c in spec.colors if c != o.color and spec.allowed(c, o.shape, scene.background)]
        objs[i] = replace(o, color=colors[int(rng.integers(len(colors)))])
    elif kind == "shape":
        shapes = [s for s in spec.shapes if s != o.shape and spec.allowed(o.color, s, scene.background, True)]
        objs[i] = replace(o, shape=shapes[int(rng.integers(len(shapes)))])
    elif kind == "count":
        if len(objs) > 1 and rng.random() < 0.5:
            del objs[i]
        else:
            new = place_object(rng, scene, o.shape, o.color)
            if new is None or len(objs) >= spec.max_objects:
                return None
            objs.append(new)
    elif kind == "position":  # mirror across the axis of the stated relation: the relation flips exactly
        if relation is None:
            return None
        horizontal = relation in ("left of", "right of")
        objs = [replace(p, cx=scene.size - p.cx) if horizontal else replace(p, cy=scene.size - p.cy) for p in objs]
    elif kind == "background":
        options = [b for b in spec.backgrounds if b != scene.background
                   and all(p.color not in spec.forbidden_on_background.get(b, ()) for p in objs)]
        if not options:
            return None
        return replace(scene, background=options[int(rng.integers(len(options)))])
    elif kind == "swap":  # attribute binding: exchange the colours of two different objects
        pairs = [(a, b) for a in range(len(objs)) for b in range(a + 1, len(objs))
                 if objs[a].color != objs[b].color and objs[a].shape != objs[b].shape]
        if not pairs:
            return None
        a, b = pairs[int(rng.integers(len(pairs)))]
        objs[a], objs[b] = replace(objs[a], color=objs[b].color), replace(objs[b], color=objs[a].color)
    else:
        raise DreamLiteError(f"unknown perturbation {kind!r}")
    out = scene.with_objects(objs)
    return out if all(fits(out, p, ignore=k) for k, p in enumerate(out.objects)) else None


GENERATION_KINDS = ("color", "shape", "count", "position", "background", "swap")
EDIT_KINDS = ("unedited", "perturbed", "other_edit")


def generation_pairs(rng, size: int, k: int = 1, kinds: Sequence[str] | None = None) -> list[dict]:
    """A prompt, its correct render and `k` renders of scenes the prompt does not describe (k pairs).

    `kinds` restricts the perturbations (a subset of GENERATION_KINDS), e.g. to train a colour-only reward.
    """
    wanted = set(kinds or GENERATION_KINDS)
    tags = [t for t in GENEVAL_TAGS if wanted & set(_GENEVAL_KINDS[t])]
    while True:
        relation = None
        if tags and rng.random() < 0.5:
            tag = tags[int(rng.integers(len(tags)))]
            record = geneval_record(rng, tag)
            try:
                scene = scene_for_record(rng, record, size, allow_held_out=False)
            except RuntimeError:
                continue
            prompt, options = record["prompt"], _GENEVAL_KINDS[tag]
            if tag == "position":
                relation = record["include"][1]["position"][0]
        else:
            scene = sample_scene(rng, size)
            prompt = training_caption(rng, scene)
            options = ["color", "shape", "count"] + (["swap"] if len(scene.objects) > 1 else [])
            relation = next((w for w in _POSITION_WORDS if w in prompt), None)
            options += (["position"] if relation else []) + (["background"] if "background" in prompt else [])
        options = [o for o in options if o in wanted]
        if not options:
            continue
        good = render(scene)
        pairs = []
        for _ in range(20 * k):
            kind = options[int(rng.integers(len(options)))]
            negative = perturb_scene(rng, scene, kind, relation)
            bad = None if negative is None else render(negative)
            if bad is not None and not np.array_equal(good, bad):
                pairs.append({"prompt": prompt, "positive": good, "negative": bad, "source": None, "kind": kind})
            if len(pairs) == k:
                return pairs


def edit_pairs(rng, size: int, k: int = 1, kinds: Sequence[str] | None = None) -> list[dict]:
    """An instruction, its source, the correct target and `k` wrong ones (unedited, perturbed, another edit)."""
    options = list(kinds or EDIT_KINDS)
    while True:
        case = sample_edit(rng, size)
        if case is None:
            continue
        good, source = render(case.target), render(case.source)
        pairs = []
        for _ in range(20 * k):
            kind = options[int(rng.integers(len(options)))]
            if kind == "unedited":
                wrong = case.source
            elif kind == "perturbed":
                wrong = perturb_scene(rng, case.target, ("color", "shape", "count")[int(rng.integers(3))])
            else:
                other = [t for t in EDIT_TYPES if t != case.edit_type]
                other_case = apply_edit(rng, case.source, other[int(rng.integers(len(other)))])
                wrong = None if other_case is None else other_case.target
            bad = None if wrong is None else render(wrong)
            if bad is not None and not np.array_equal(good, bad):
                pairs.append({"prompt": case.instruction, "positive": good, "negative": bad, "source": source,
                              "kind": f"{kind}:{case.edit_type}" if kind != "unedited" else kind})
            if len(pairs) == k:
                return pairs


def reward_pairs(task: str, seed: int, start: int, n: int, size: int, per_prompt: int = 1,
                 kinds: Sequence[str] | None = None) -> list[dict]:
    """Prompts `start .. start+n-1` of a seeded stream, `per_prompt` pairs each (a pure function of the index).

    Several negatives per prompt make batches more informative and encode fewer prompts.
    """
    make = generation_pairs if task == "generate" else edit_pairs
    known = GENERATION_KINDS if task == "generate" else EDIT_KINDS
    if kinds is not None and (not kinds or any(k not in known for k in kinds)):
        raise DreamLiteError(f"{task} reward kinds must be a non-empty subset of {', '.join(known)}, got {kinds}")
    salt = 11 if task == "generate" else 12
    return [pair for index in range(start, start + n)
            for pair in make(np.random.default_rng([seed, index, salt]), size, per_prompt, kinds)]


def _stack(arrays) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def pair_tensors(pairs: list[dict]):
    pos, neg = _stack([p["positive"] for p in pairs]), _stack([p["negative"] for p in pairs])
    src = _stack([p["source"] for p in pairs]) if pairs[0]["source"] is not None else None
    return pos, neg, src, [p["prompt"] for p in pairs]


# ============================================================================ training and evaluation
@torch.no_grad()
def ranking_accuracy(reward: RewardModel, pairs: list[dict], batch_size: int = 64) -> dict:
    """Share of pairs where the correct image scores above the wrong one, overall and per perturbation kind."""
    hits: dict = {}
    for k in range(0, len(pairs), batch_size):
        chunk = pairs[k:k + batch_size]
        pos, neg, src, prompts = pair_tensors(chunk)
        both = reward(torch.cat([pos, neg]), prompts * 2, None if src is None else torch.cat([src, src]))
        better = (both[: len(chunk)] > both[len(chunk):]).tolist()
        for pair, ok in zip(chunk, better):
            kind = pair["kind"].split(":")[0]
            hits.setdefault(kind, []).append(ok)
    out = {kind: float(np.mean(v)) for kind, v in sorted(hits.items())}
    out["overall"] = float(np.mean([ok for v in hits.values() for ok in v]))
    out["pairs"] = len(pairs)
    return out


def train_shapes_reward(task: str, out_dir: str, steps: int = 2000, size: int = 64, batch_size: int = 32,
                        lr: float = 1e-3, seed: int = 0, eval_pairs: int = 512, channels=(32, 64, 96),
                        kinds: Sequence[str] | None = None, contrastive: float = 1.0,
                        model_samples: Callable | None = None, model_fraction: float = 0.25,
                        encoder: SentenceEncoder | None = None, progress: bool = True) -> dict:
    """Train a Shapes reward for `task`, save it to `out_dir` (safetensors + config) and return its metrics.

    Loss: Bradley-Terry on (correct, perturbed) pairs of one prompt, plus for generation an in-batch
    contrastive term (each correct render against the batch's other prompts), which teaches coarse
    text-image agreement quickly. `kinds` restricts the perturbations. `model_samples(prompts, sources) ->
    uint8 [B, H, W, 3]` (e.g. a DreamLite pipeline) adds model samples as negatives for a `model_fraction`
    of the pairs. Held-out accuracy uses a disjoint seed stream.
    """
    from tqdm.auto import tqdm

    if task not in TASKS:
        raise DreamLiteError(f"unknown reward task {task!r}; expected one of {TASKS}")
    if steps < 1 or batch_size < 2 or eval_pairs < 1:
        raise DreamLiteError("reward training needs steps >= 1, batch_size >= 2 and eval_pairs >= 1")
    check_replaceable(out_dir, METRICS_FILE)  # before training: the folder must be new, empty or a reward's
    torch.manual_seed(seed)
    reward = ShapesReward(ShapesRewardNet(task=task, image_size=size, channels=tuple(channels)), encoder)
    stats = reward.encoder([p["prompt"] for p in reward_pairs(task, seed + 7, 0, 256, size, 1, kinds)])
    reward.net.text_mean.copy_(stats.mean(0))
    reward.net.text_std.copy_(stats.std(0).clamp_min(1e-4))
    optimizer = torch.optim.AdamW(reward.net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    losses, per_prompt, start = [], 4, time.time()
    if batch_size % per_prompt:
        raise DreamLiteError(f"reward batch_size must be a multiple of {per_prompt}")
    for step in tqdm(range(steps), desc=f"reward {task}", disable=not progress):
        n_prompts = batch_size // per_prompt
        pairs = reward_pairs(task, seed, step * n_prompts, n_prompts, size, per_prompt, kinds)
        pos, neg, src, prompts = pair_tensors(pairs)
        if model_samples is not None:
            use = torch.rand(batch_size, generator=generator) < model_fraction
            if use.any():
                idx = use.nonzero().flatten().tolist()
                samples = model_samples([prompts[i] for i in idx], None if src is None else src[idx])
                neg[idx] = _stack(list(samples))
        noise = 0.03 * torch.rand(2, batch_size, 1, 1, 1, generator=generator)  # robustness to model-sample noise
        pos = pos + noise[0] * torch.randn(pos.shape, generator=generator)
        neg = neg + noise[1] * torch.randn(neg.shape, generator=generator)
        both = reward(torch.cat([pos, neg]), prompts * 2, None if src is None else torch.cat([src, src]))
        margin = both[:batch_size] - both[batch_size:]
        loss = F.softplus(-margin).mean()
        if contrastive > 0 and task == "generate":  # scores[i, j]: render of prompt i under prompt j
            images = pos[::per_prompt].repeat_interleave(n_prompts, 0)
            scores = reward(images, prompts[::per_prompt] * n_prompts).view(n_prompts, n_prompts)
            loss = loss + contrastive * F.cross_entropy(scores.t(), torch.arange(n_prompts))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    reward.net.eval()
    held_out = reward_pairs(task, seed + 1_000_003, 0, eval_pairs, size)
    metrics = {"task": task, "steps": steps, "size": size, "batch_size": batch_size, "seed": seed,
               "seconds": round(time.time() - start, 1), "first_loss": float(np.mean(losses[: max(1, steps // 10)])),
               "last_loss": float(np.mean(losses[-max(1, steps // 10):])),
               "held_out_accuracy": ranking_accuracy(reward, held_out)}
    with atomic_dir(out_dir) as folder:
        reward.net.save_pretrained(folder, safe_serialization=True)
        with open(os.path.join(folder, METRICS_FILE), "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics


# ============================================================================ adapters for the paper's reward models
def _require_folder(path: str | None, what: str) -> str:
    if not path or not os.path.isdir(path):
        raise DreamLiteError(f"{what} weights folder not found: {path}")
    return path


def _require_package(module: str, what: str, install: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DreamLiteError(f"{what} needs its package `{module}` ({install})") from None


def _find_file(folder: str, names: Sequence[str], what: str) -> str:
    for name in names:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise DreamLiteError(f"{what}: none of {', '.join(names)} in {folder}")


def _to_255(images: torch.Tensor) -> list[torch.Tensor]:
    """[-1, 1] [B, 3, H, W] -> list of [3, H, W] in [0, 255], the range their differentiable processors rescale."""
    return list(((images.clamp(-1, 1) + 1) * 127.5).unbind(0))


class HPSv3Reward(RewardModel):
    """HPSv3 (Qwen2-VL based human-preference reward) for generation, from a local folder.

    The folder holds `HPSv3.safetensors` and optionally the inferencer's YAML config (`config.yaml`), whose
    `model_name_or_path` names the local Qwen2-VL-7B-Instruct; the `hpsv3` package provides the model code.
    Built with `differentiable=True`, its processor takes tensors, so gradients reach the pixels; the
    score is the predicted preference mean (first logit).
    """

    task = "generate"

    def __init__(self, path: str, device: str | None = None):
        super().__init__()
        _require_folder(path, "HPSv3")
        checkpoint = _find_file(path, ("HPSv3.safetensors", "model.safetensors"), "HPSv3")
        hpsv3 = _require_package("hpsv3", "HPSv3", "pip install hpsv3, or from github.com/MizzenAI/HPSv3")
        config = os.path.join(path, "config.yaml")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.inferencer = hpsv3.HPSv3RewardInferencer(config_path=config if os.path.isfile(config) else None,
                                                      checkpoint_path=checkpoint, device=device, differentiable=True)
        self.inferencer.model.requires_grad_(False)

    def forward(self, images, prompts, sources=None):
        self.check(images, prompts, sources)
        logits = self.inferencer.reward(prompts=list(prompts), image_paths=_to_255(images))
        return logits[:, 0].to(images.device, images.dtype)


class EditRewardAdapter(RewardModel):
    """EditReward (TIGER-Lab, Qwen2.5-VL / MiMo-VL based) for editing, from a local checkpoint folder.

    The folder holds `model.safetensors` and the inferencer's YAML config (`config.yaml`, e.g. the repo's
    `EditReward-Qwen2.5-7B-VL.yaml` with `model_name_or_path` pointing at the local base VLM); the
    `EditReward` package provides the model code. Scores the (source, edited, instruction) triple.
    """

    task = "edit"

    def __init__(self, path: str, device: str | None = None, reward_dim: str = "overall_detail",
                 rm_head_type: str = "ranknet_multi_head"):
        super().__init__()
        _require_folder(path, "EditReward")
        _find_file(path, ("model.safetensors",), "EditReward")
        config = _find_file(path, ("config.yaml",), "EditReward")
        package = _require_package("EditReward", "EditReward", "install it from github.com/TIGER-AI-Lab/EditReward")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.inferencer = package.EditRewardInferencer(config_path=config, checkpoint_path=path, device=device,
                                                       differentiable=True, reward_dim=reward_dim,
                                                       rm_head_type=rm_head_type)
        self.inferencer.model.requires_grad_(False)

    def forward(self, images, prompts, sources=None):
        self.check(images, prompts, sources)
        logits = self.inferencer.reward(prompts=list(prompts), image_src=_to_255(sources), image_paths=_to_255(images))
        return logits[:, 0].to(images.device, images.dtype)


ADAPTERS = {"hpsv3": HPSv3Reward, "editreward": EditRewardAdapter}


def load_reward(spec: str, task: str | None = None, encoder: SentenceEncoder | None = None) -> RewardModel:
    """`DIR` (a Shapes reward folder), `hpsv3:DIR` or `editreward:DIR` -> a frozen reward model."""
    if not isinstance(spec, str) or not spec:
        raise DreamLiteError(f"a reward must be a folder or KIND:FOLDER, got {spec!r}")
    kind, _, path = spec.partition(":")
    if kind in ADAPTERS and path:
        reward = ADAPTERS[kind](path)
    else:
        if not os.path.isdir(spec):
            raise DreamLiteError(f"reward folder not found: {spec}")
        reward = ShapesReward.from_pretrained(spec, encoder)
    if task is not None and reward.task != task:
        raise DreamLiteError(f"{spec} is a {reward.task} reward, but a {task} reward is needed here")
    return reward.requires_grad_(False).eval()
