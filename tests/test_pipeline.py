import json

import numpy as np
import pytest
import torch

from dreamlite.errors import DreamLiteError
from dreamlite.pipeline import DreamLitePipeline, generators_from_seeds

PROMPTS = ["a red circle", "a blue square on a gray background", "two stars", "a photo of a green triangle"]


def _np(pipe, **kwargs):
    return pipe(output_type="np", height=64, width=64, num_inference_steps=2, **kwargs).images


@pytest.mark.parametrize("mode", ["base", "mobile"])
def test_batch_of_four_equals_four_single_calls(minilm_parts, mode):
    pipe = DreamLitePipeline(**minilm_parts, mode=mode)
    pipe.set_progress_bar_config(disable=True)
    batch = _np(pipe, prompt=PROMPTS, generator=generators_from_seeds([1, 2, 3, 4]))
    singles = np.concatenate([_np(pipe, prompt=p, generator=generators_from_seeds([s])) for p, s in zip(PROMPTS, [1, 2, 3, 4])])
    assert batch.shape == (4, 64, 64, 3)
    assert np.abs(batch - singles).max() <= 1e-4
    assert np.abs(batch[0] - batch[1]).max() > 1e-3  # different prompts and seeds give different images


def test_batch_of_edits_equals_single_edits(minilm_pipe, source_image):
    images = [source_image, source_image.rotate(90)]
    prompts = ["make the circle red", "remove the square"]
    batch = _np(minilm_pipe, prompt=prompts, image=images, generator=generators_from_seeds([5, 6]))
    for i in range(2):
        single = _np(minilm_pipe, prompt=prompts[i], image=images[i], generator=generators_from_seeds([5 + i]))
        assert np.abs(batch[i] - single[0]).max() <= 1e-4


def test_num_images_per_prompt_and_non_square_size(minilm_pipe):
    out = minilm_pipe(prompt=["a star", "a cross"], num_images_per_prompt=2, height=48, width=80, num_inference_steps=1,
                      generator=generators_from_seeds(range(4)), output_type="np").images
    assert out.shape == (4, 48, 80, 3)


def test_edit_conditions_on_the_source(minilm_pipe, source_image):
    a = minilm_pipe(prompt="x", image=source_image, num_inference_steps=2, generator=generators_from_seeds([0]), output_type="latent").images
    b = minilm_pipe(prompt="x", image=source_image.rotate(90), num_inference_steps=2, generator=generators_from_seeds([0]), output_type="latent").images
    assert (a - b).abs().max() > 1e-3


def test_precomputed_embeddings_skip_the_text_encoder(minilm_parts, minilm_pipe):
    embeds, mask, neg, neg_mask = minilm_pipe.encode_prompt(["a red circle"], "generate", None, None, True)
    without_encoder = DreamLitePipeline(vae=minilm_parts["vae"], unet=minilm_parts["unet"], scheduler=minilm_parts["scheduler"])
    without_encoder.set_progress_bar_config(disable=True)
    a = _np(without_encoder, prompt_embeds=embeds, prompt_embeds_mask=mask, negative_prompt_embeds=neg,
            negative_prompt_embeds_mask=neg_mask, generator=generators_from_seeds([3]))
    b = _np(minilm_pipe, prompt="a red circle", generator=generators_from_seeds([3]))
    assert np.abs(a - b).max() <= 1e-5
    with pytest.raises(DreamLiteError, match="no text encoder"):
        without_encoder(prompt="a red circle", height=64, width=64)


@pytest.mark.parametrize("kwargs,message", [
    (dict(prompt="", height=64, width=64), "prompt is empty"),
    (dict(prompt="   ", height=64, width=64), "prompt is empty"),
    (dict(prompt="a", height=60, width=64), "multiple of 16"),
    (dict(prompt="a", height=64, width=8192), "too large"),
    (dict(prompt="a", height=64, width=64, num_images_per_prompt=0), "num_images_per_prompt"),
    (dict(prompt="a", height=0, width=64), "multiple of 16"),  # 0 is not "the default size"
    (dict(prompt="a", height=64, width=64, num_inference_steps=0), "sampling steps"),  # nor "the default steps"
    (dict(prompt="a", height=64, width=64, num_inference_steps=-2), "sampling steps"),
    (dict(prompt="a", height=64, width=64, num_inference_steps=2.5), "sampling steps"),
    (dict(prompt="a", height=64, width=64, generator=generators_from_seeds([1, 2])), "generators"),
])
def test_bad_arguments_fail_before_sampling(minilm_pipe, kwargs, message):
    with pytest.raises(DreamLiteError, match=message):
        minilm_pipe(**kwargs)


def test_callback_sees_every_step(minilm_pipe):
    seen = []
    minilm_pipe(prompt="a", height=32, width=32, num_inference_steps=3, output_type="latent",
                callback_on_step_end=lambda pipe, i, t, d: seen.append((i, d["latents"].shape)))
    side = 32 // minilm_pipe.vae_scale_factor
    assert [i for i, _ in seen] == [0, 1, 2] and seen[0][1] == (1, 4, side, side)


def test_mobile_mode_ignores_guidance(minilm_parts):
    pipe = DreamLitePipeline(**minilm_parts, mode="mobile")
    pipe.set_progress_bar_config(disable=True)
    a = _np(pipe, prompt="a", guidance_scale=1.0, generator=generators_from_seeds([0]))
    b = _np(pipe, prompt="a", guidance_scale=9.0, generator=generators_from_seeds([0]))
    assert np.array_equal(a, b)
    with pytest.raises(DreamLiteError, match="unknown mode"):
        DreamLitePipeline(**minilm_parts, mode="turbo")


def test_model_folder_carries_its_guidance_defaults(minilm_parts, tmp_path, source_image):
    """A folder's `guidance_scale` / `image_guidance_scale` are what a call without them uses (and survive a
    save/load); explicit arguments still win."""
    pipe = DreamLitePipeline(**minilm_parts, guidance_scale=1.0, image_guidance_scale=2.0)
    pipe.save_pretrained(tmp_path)
    loaded = DreamLitePipeline.from_pretrained(str(tmp_path), text_encoder=minilm_parts["text_encoder"],
                                               tokenizer=minilm_parts["tokenizer"])
    loaded.set_progress_bar_config(disable=True)
    assert (loaded.default_guidance, loaded.default_image_guidance) == (1.0, 2.0)
    seed = generators_from_seeds
    implicit = _np(loaded, prompt="a red circle", generator=seed([0]))
    assert np.array_equal(implicit, _np(loaded, prompt="a red circle", guidance_scale=1.0, generator=seed([0])))
    assert not np.array_equal(implicit, _np(loaded, prompt="a red circle", guidance_scale=7.0, generator=seed([0])))
    edit = _np(loaded, prompt="make it red", image=source_image, generator=seed([0]))
    assert np.array_equal(edit, _np(loaded, prompt="make it red", image=source_image, guidance_scale=1.0,
                                    image_guidance_scale=2.0, generator=seed([0])))
    assert DreamLitePipeline(**minilm_parts).default_guidance == 3.5  # folders without one keep the global default
    with pytest.raises(DreamLiteError, match="guidance_scale must be a finite number >= 0"):
        DreamLitePipeline(**minilm_parts, guidance_scale=-1)


@pytest.mark.parametrize("task,guidance,image_guidance,branches", [
    ("generate", 1.0, 1.5, 1), ("generate", 3.0, 1.5, 2), ("edit", 1.0, 1.0, 1), ("edit", 3.0, 1.0, 2),
    ("edit", 1.0, 1.5, 3), ("edit", 3.0, 2.0, 3),
])
def test_a_scale_of_one_skips_its_guidance_branch(minilm_pipe, source_image, task, guidance, image_guidance, branches):
    """Branches whose scale is 1 are left out (the U-Net sees fewer rows) and the result is the full formula's:
    a scale a hair above 1 runs every branch and lands within that hair of the skipped one."""
    rows = []
    hook = minilm_pipe.unet.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    edit = {"image": source_image} if task == "edit" else {}
    try:
        out = _np(minilm_pipe, prompt="a red circle", guidance_scale=guidance, image_guidance_scale=image_guidance,
                  generator=generators_from_seeds([2]), **edit)
    finally:
        hook.remove()
    assert rows == [branches] * 2  # 2 steps, one image
    near = _np(minilm_pipe, prompt="a red circle", guidance_scale=guidance + 1e-4 * (guidance == 1),
               image_guidance_scale=image_guidance + 1e-4 * (image_guidance == 1), generator=generators_from_seeds([2]),
               **edit)
    assert np.abs(out - near).max() <= 2e-3


@pytest.mark.parametrize("task", ["generate", "edit"])
def test_guidance_interval_guides_only_the_low_noise_steps(minilm_pipe, source_image, task, tmp_path):
    """Steps above `guidance_max_sigma` take the text branch alone: all above is the unguided sample, none above
    is the guided one, and a split costs what `unet_evaluations_per_image` says. A folder records the default."""
    from dreamlite.pipeline import unet_evaluations_per_image

    edit = {"image": source_image} if task == "edit" else {}
    kw = dict(prompt="a red circle", guidance_scale=4.0, image_guidance_scale=2.0, num_inference_steps=4,
              height=64, width=64, output_type="np", **edit)
    seed = generators_from_seeds

    def sample(**extra):
        rows = []
        hook = minilm_pipe.unet.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
        try:
            return minilm_pipe(generator=seed([1]), **{**kw, **extra}).images, rows
        finally:
            hook.remove()

    guided, _ = sample()
    always, _ = sample(guidance_max_sigma=1.0)
    never, _ = sample(guidance_max_sigma=1e-4)
    unguided, _ = sample(guidance_scale=1.0, image_guidance_scale=1.0)
    assert np.array_equal(always, guided) and np.abs(never - unguided).max() <= 1e-5
    sigmas = minilm_pipe.step_sigmas(4, 64, 64)
    split = (sigmas[1] + sigmas[2]) / 2  # two steps above, two below
    interval, rows = sample(guidance_max_sigma=split)
    full = 2 if task == "generate" else 3
    assert rows == [1, 1, full, full]
    assert sum(rows) == unet_evaluations_per_image("base", task, 4, 4.0, 2.0, sigmas, split)
    assert np.abs(interval - guided).max() > 1e-3 and np.abs(interval - unguided).max() > 1e-3

    minilm_pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps({**index, "guidance_max_sigma": split}))
    loaded = DreamLitePipeline.from_pretrained(str(tmp_path), text_encoder=minilm_pipe.text_encoder,
                                               tokenizer=minilm_pipe.tokenizer)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.resolve_max_sigma() == pytest.approx(split) and loaded.sampling_defaults["guidance_max_sigma"] == split
    implicit = loaded(generator=seed([1]), **kw).images
    assert np.array_equal(implicit, loaded(generator=seed([1]), guidance_max_sigma=split, **kw).images)
    assert not np.array_equal(implicit, loaded(generator=seed([1]), guidance_max_sigma=1.0, **kw).images)
    for bad in (0.0, 1.5):
        with pytest.raises(DreamLiteError, match="guidance_max_sigma must be in"):
            minilm_pipe(generator=seed([1]), guidance_max_sigma=bad, **kw)


def test_edit_strength_starts_from_the_noised_source(minilm_pipe, source_image):
    """strength s < 1 skips the steps above s and starts from (1 - sigma) source + sigma noise at the first step
    left; 1 is the default pure-noise start. It is an edit option only, and its range is checked."""
    kw = dict(prompt="make it blue", image=source_image, guidance_scale=1.0, image_guidance_scale=1.0,
              num_inference_steps=4, height=64, width=64, output_type="latent")
    sigmas = minilm_pipe.step_sigmas(4, 64, 64)
    strength = (sigmas[1] + sigmas[2]) / 2  # the last two steps remain
    seen = []

    def sample(**extra):
        hook = minilm_pipe.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        try:
            return minilm_pipe(generator=generators_from_seeds([3]), **{**kw, **extra}).images
        finally:
            hook.remove()

    assert torch.equal(sample(), sample(strength=1.0))
    seen.clear()
    started = sample(strength=strength)
    assert len(seen) == 2
    source = minilm_pipe.prepare_source_latents([source_image], 64, 64)
    noise = minilm_pipe.prepare_latents(1, 64, 64, generators_from_seeds([3]))
    expected = (1 - sigmas[2]) * source + sigmas[2] * noise
    width = source.shape[-1]
    torch.testing.assert_close(seen[0][..., :width], expected, atol=1e-5, rtol=1e-4)  # target half of the canvas
    torch.testing.assert_close(seen[0][..., width:], source)  # the source half is unchanged
    assert not torch.equal(started, sample())
    for bad in (0.0, 1.5):
        with pytest.raises(DreamLiteError, match="strength must be in"):
            sample(strength=bad)
    with pytest.raises(DreamLiteError, match="strength applies to edits"):
        minilm_pipe("a red circle", strength=0.5, num_inference_steps=2, height=64, width=64)


def test_mask_image_keeps_the_source_latent_outside_the_mask(minilm_pipe, source_image):
    """Blended sampling: after the last step the latents equal the source latent wherever the mask is 0, and the
    sampler's result where it is 1. A pixel-size mask is pooled to the latent grid (a cell may change if any pixel may)."""
    kw = dict(prompt="make it blue", image=source_image, num_inference_steps=3, height=64, width=64, output_type="latent")
    free = minilm_pipe(generator=generators_from_seeds([4]), **kw).images
    pixels = np.zeros((64, 64), dtype=np.float32)
    pixels[:24, 40:] = 1.0  # a top-right block: latent cells (0-5, 10-15) of the 4x VAE
    held = minilm_pipe(generator=generators_from_seeds([4]), mask_image=pixels, **kw).images
    source = minilm_pipe.prepare_source_latents([source_image], 64, 64)
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[:6, 10:] = True
    assert torch.equal(held[0][:, ~region], source[0][:, ~region])
    assert not torch.equal(held[0][:, region], source[0][:, region])
    assert not torch.equal(held, free)
    for bad, message in ((np.ones((50, 50)), "expected the image size"), ("everywhere", "must be 'auto'")):
        with pytest.raises(DreamLiteError, match=message):
            minilm_pipe(generator=generators_from_seeds([4]), mask_image=bad, **kw)
    with pytest.raises(DreamLiteError, match="applies to edits"):
        minilm_pipe(prompt="a red circle", mask_image=pixels, height=64, width=64, num_inference_steps=1)


def test_generate_mask_thresholds_the_instruction_contrast(minilm_pipe, source_image):
    """generate_mask marks cells where the instruction moves the prediction against the empty prompt, relative to
    the image's largest move: threshold 0 frees every cell, a higher threshold fewer, dilation more."""
    def mask(**options):
        return minilm_pipe.generate_mask(source_image, "remove the square", generator=generators_from_seeds([2]),
                                         **{"num_maps_per_mask": 2, **options})

    everything, strict, default = mask(mask_threshold=0.0), mask(mask_threshold=0.9, mask_dilation=0), mask()
    assert everything.shape == (1, 16, 16) and everything.min() == 1.0
    assert set(np.unique(default)) <= {0.0, 1.0}
    assert 0 < strict.sum() < default.sum() <= everything.sum()
    assert mask(mask_threshold=0.9, mask_dilation=1).sum() > strict.sum()
    # mask_image="auto" in a call: at threshold 1 without margin only the peak cell is free, the rest is the source.
    held = minilm_pipe(prompt="remove the square", image=source_image, mask_image="auto", height=64, width=64,
                       mask_options={"mask_threshold": 1.0, "mask_dilation": 0, "num_maps_per_mask": 2},
                       num_inference_steps=2, output_type="latent", generator=generators_from_seeds([2])).images
    source = minilm_pipe.prepare_source_latents([source_image], 64, 64)
    assert (held == source).all(dim=1).sum() == 16 * 16 - 1
    # generate_mask's outputs go back in as mask_image, one mask per prompt (np: (batch, h, w); pil: one image each).
    two = dict(prompt=["remove the square", "make it red"], image=source_image, height=64, width=64,
               num_inference_steps=1, output_type="latent")
    for output_type in ("np", "pil", "pt"):
        masks = minilm_pipe.generate_mask(source_image, two["prompt"], num_maps_per_mask=1, output_type=output_type,
                                          generator=generators_from_seeds([1, 2]))
        assert len(masks) == 2
        out = minilm_pipe(mask_image=masks, generator=generators_from_seeds([5, 6]), **two).images
        assert out.shape == (2, 4, 16, 16)
    with pytest.raises(DreamLiteError, match="output_type must be"):
        minilm_pipe.generate_mask(source_image, "x", output_type="latent")
    with pytest.raises(DreamLiteError, match="3 generators for 1 prompts"):
        minilm_pipe.generate_mask(source_image, "x", generator=generators_from_seeds([1, 2, 3]))
    with pytest.raises(DreamLiteError, match="unknown mask option"):
        minilm_pipe(prompt="x", image=source_image, mask_image="auto", mask_options={"threshold": 0.2},
                    height=64, width=64, num_inference_steps=1)
    for bad in ({"mask_threshold": 1.5}, {"num_maps_per_mask": 0}, {"mask_encode_strength": 1.0}):
        with pytest.raises(DreamLiteError, match="must be"):
            mask(**bad)


def test_masks_per_image_and_per_prompt_hold_each_images_own_source(minilm_pipe, source_image):
    """Each image keeps its own source outside its own mask: one mask per image for a batch of sources, and one mask
    per prompt repeated over num_images_per_prompt."""
    sources = [source_image, source_image.rotate(90)]
    masks = np.zeros((2, 16, 16), dtype=np.float32)
    masks[0, :8], masks[1, :, 8:] = 1.0, 1.0  # free: top half of the first, right half of the second
    held = minilm_pipe(prompt=["make it red", "remove the square"], image=sources, mask_image=masks, height=64,
                       width=64, num_inference_steps=2, output_type="latent", num_images_per_prompt=2,
                       generator=generators_from_seeds(range(4))).images
    source = minilm_pipe.prepare_source_latents(sources, 64, 64)
    for row, prompt in enumerate([0, 0, 1, 1]):
        kept = torch.from_numpy(masks[prompt] == 0)
        assert torch.equal(held[row][:, kept], source[prompt][:, kept])
        assert not torch.equal(held[row][:, ~kept], source[prompt][:, ~kept])


def test_auto_mask_in_bfloat16(minilm_parts, source_image):
    """The estimated mask takes the latents' dtype, so a half-precision pipeline samples through it."""
    import copy

    pipe = DreamLitePipeline(**copy.deepcopy(minilm_parts)).to(dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="make it red", image=source_image, mask_image="auto", height=64, width=64, num_inference_steps=2,
               mask_options={"num_maps_per_mask": 1}, output_type="latent", generator=generators_from_seeds([0])).images
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_carry_noise_is_the_ddim_step_with_scaled_noise():
    """Euler with the returned velocity lands on (1 - s') x0 + s' * scale * noise, where x0 and the noise are the
    step's own predictions; at scale 1 that is the plain Euler step (the velocity comes back unchanged)."""
    from dreamlite.guidance import carry_noise

    rng = np.random.default_rng(0)
    x, v = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    sigma, sigma_next = 0.8, 0.6
    assert carry_noise(v, x, sigma, sigma_next, 1.0) is v
    for scale in (0.9, 1.05):
        for array, velocity in ((x, v), (torch.from_numpy(x), torch.from_numpy(v))):
            moved = array + (sigma_next - sigma) * carry_noise(velocity, array, sigma, sigma_next, scale)
            want = (1 - sigma_next) * (array - sigma * velocity) + sigma_next * scale * (array + (1 - sigma) * velocity)
            assert np.allclose(np.asarray(moved), np.asarray(want), atol=1e-5)
    last = x + (0.0 - sigma) * carry_noise(v, x, sigma, 0.0, 1.05)  # the final step lands on x0 whatever the scale
    assert np.allclose(last, x - sigma * v, atol=1e-5)


@pytest.mark.parametrize("task", ["generate", "edit"])
def test_noise_scale_changes_the_sample_and_a_folder_records_it(minilm_pipe, source_image, task, tmp_path):
    """`noise_scale` 1 is the plain sampler, another scale changes the sample, a model folder's `noise_scale` is
    the default a call uses, and a bad value is a one-line error."""
    edit = {"image": source_image} if task == "edit" else {}
    kw = dict(prompt="a red circle", guidance_scale=3.0, num_inference_steps=4, height=64, width=64,
              output_type="np", **edit)
    seed = generators_from_seeds
    plain = minilm_pipe(generator=seed([1]), **kw).images
    assert np.array_equal(plain, minilm_pipe(generator=seed([1]), noise_scale=1.0, **kw).images)
    scaled = minilm_pipe(generator=seed([1]), noise_scale=1.1, **kw).images
    assert np.abs(scaled - plain).max() > 1e-3

    minilm_pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps({**index, "noise_scale": 1.1}))
    loaded = DreamLitePipeline.from_pretrained(str(tmp_path), text_encoder=minilm_pipe.text_encoder,
                                               tokenizer=minilm_pipe.tokenizer)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.resolve_noise_scale() == 1.1 and loaded.sampling_defaults["noise_scale"] == 1.1
    assert np.array_equal(loaded(generator=seed([1]), **kw).images, scaled)
    assert np.array_equal(loaded(generator=seed([1]), noise_scale=1.0, **kw).images, plain)
    for bad in (0.0, 3.0, True):
        with pytest.raises(DreamLiteError, match="noise_scale must be a number in"):
            minilm_pipe(generator=seed([1]), noise_scale=bad, **kw)
