"""The pooled-text U-Net: what it adds to diffusers' DreamLite U-Net, and that model folders keep it."""

import json

import torch
from diffusers import DreamLiteUNetModel

from dreamlite.models.unet import DreamLitePooledTextUNetModel, pooled_text


def _inputs(width=384, length=6):
    g = torch.Generator().manual_seed(0)
    canvas = torch.randn(2, 4, 8, 16, generator=g)
    states = torch.randn(2, length, width, generator=g)
    mask = torch.ones(2, length, dtype=torch.long)
    mask[0, 3:] = 0
    return canvas, states, mask


def _run(unet, canvas, states, mask, **added):
    """One U-Net call as the pipeline makes it (size ids only), or with extra `added_cond_kwargs`."""
    with torch.no_grad():
        return unet(canvas, torch.tensor([300.0, 700.0]), encoder_hidden_states=states, encoder_attention_mask=mask,
                    added_cond_kwargs={"time_ids": torch.tensor([[32.0, 32.0]] * 2), **added}, return_dict=False)[0]


def test_pooled_text_ignores_padding_and_has_unit_rms():
    _, states, mask = _inputs()
    padded = states.clone()
    padded[0, 3:] = 50.0
    pooled = pooled_text(states, mask)
    assert torch.allclose(pooled, pooled_text(padded, mask))
    assert torch.allclose(pooled[0], pooled_text(states[:1, :3], None)[0], atol=1e-5)
    assert torch.allclose(pooled.pow(2).mean(dim=-1), torch.ones(2), atol=1e-3)


def test_text_time_builds_the_pooled_model_whose_output_follows_the_pooled_prompt(make_unet):
    plain = make_unet(384)
    pooled = make_unet(384, addition_embed_type="text_time")
    assert type(plain) is DreamLiteUNetModel and isinstance(pooled, DreamLitePooledTextUNetModel)
    assert pooled.config.projection_class_embeddings_input_dim == 384 + 2 * pooled.config.addition_time_embed_dim
    canvas, states, mask = _inputs()
    out = _run(pooled, canvas, states, mask)
    padded = states.clone()
    padded[0, 3:] = 50.0  # masked tokens: neither cross-attention nor pooling may read them
    assert torch.allclose(out, _run(pooled, canvas, padded, mask), atol=1e-5)
    given = _run(pooled, canvas, states, mask, text_embeds=torch.zeros(2, 384))
    assert not torch.allclose(out, given, atol=1e-3)  # the pooled vector does reach the output


def test_pooled_model_folder_round_trips_through_the_pipeline(tmp_path, minilm_parts, make_unet):
    from dreamlite.pipeline import DreamLitePipeline

    parts = {**minilm_parts, "unet": make_unet(384, addition_embed_type="text_time")}
    DreamLitePipeline(**parts, text_encoder_name="minilm").save_pretrained(tmp_path / "m")
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "DreamLiteUNetModel"]  # the stock class, which diffusers' loader accepts
    pipe = DreamLitePipeline.from_pretrained(tmp_path / "m")
    assert isinstance(pipe.unet, DreamLitePooledTextUNetModel)
    canvas, states, mask = _inputs()
    assert torch.allclose(_run(pipe.unet, canvas, states, mask), _run(parts["unet"], canvas, states, mask), atol=1e-5)


def test_channel_conditioning_keeps_the_pooled_model(make_unet):
    from dreamlite.training.objective import widen_for_channel_conditioning

    wide = widen_for_channel_conditioning(make_unet(384, addition_embed_type="text_time"))
    assert isinstance(wide, DreamLitePooledTextUNetModel) and wide.config.in_channels == 8
