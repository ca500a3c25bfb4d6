import pytest
import torch

from dreamlite.errors import DreamLiteError
from dreamlite.models.text_encoders import (
    EDIT_PREFIX,
    GENERATE_PREFIX,
    QWEN_GENERATE_DROP,
    QWEN_GENERATE_TEMPLATE,
    CachedPromptEncoder,
    prompt_encoder_for,
    with_task_prefix,
)


def test_task_prefixes():
    assert with_task_prefix("a cat", "generate") == "[Generate]: a cat"
    assert with_task_prefix("a red hat", "edit").startswith("[Edit]: A diptych") and EDIT_PREFIX.endswith("has ")
    with pytest.raises(DreamLiteError):
        with_task_prefix("x", "paint")


def test_qwen_generate_drop_is_the_template_prefix(qwen_parts):
    """The 34 dropped states are exactly the system turn and the user-turn header of the real tokenizer."""
    tokenizer = qwen_parts["tokenizer"]
    head = QWEN_GENERATE_TEMPLATE.split("{}")[0]
    assert len(tokenizer(head)["input_ids"]) == QWEN_GENERATE_DROP
    encoder = prompt_encoder_for(qwen_parts["text_encoder"], tokenizer, qwen_parts["processor"])
    text = GENERATE_PREFIX + "a red circle"
    embeds, mask = encoder.encode([text], "generate")
    full = len(tokenizer(QWEN_GENERATE_TEMPLATE.format(text))["input_ids"])
    assert embeds.shape == (1, full - QWEN_GENERATE_DROP, 64) and mask.sum() == full - QWEN_GENERATE_DROP


@pytest.mark.parametrize("backend", ["qwen", "minilm"])
def test_batch_is_right_padded_and_matches_single_prompts(backend, qwen_parts, minilm_parts):
    parts = qwen_parts if backend == "qwen" else minilm_parts
    encoder = prompt_encoder_for(parts["text_encoder"], parts["tokenizer"], parts.get("processor"))
    texts = ["[Generate]: a circle", "[Generate]: a red circle left of a blue square on a beige background"]
    embeds, mask = encoder.encode(texts, "generate")
    assert mask.dtype == torch.long and set(mask.unique().tolist()) <= {0, 1}
    assert mask[0].sum() < mask[1].sum() and mask[1].all()
    assert (mask[0, : mask[0].sum()] == 1).all() and (embeds[0][mask[0] == 0] == 0).all()  # right padding
    for i, text in enumerate(texts):
        single, _ = encoder.encode([text], "generate")
        assert torch.allclose(single[0], embeds[i, : single.shape[1]], atol=1e-4)


def test_qwen_edit_sees_the_source_image(qwen_parts, source_image):
    encoder = prompt_encoder_for(qwen_parts["text_encoder"], qwen_parts["tokenizer"], qwen_parts["processor"])
    text = with_task_prefix("make it blue", "edit")
    a, _ = encoder.encode([text], "edit", [source_image])
    b, _ = encoder.encode([text], "edit", [source_image.rotate(90)])
    assert a.shape == b.shape and (a - b).abs().max() > 1e-4
    with pytest.raises(DreamLiteError, match="source image"):
        encoder.encode([text], "edit", None)


def test_minilm_states_are_384_d(minilm_parts):
    encoder = prompt_encoder_for(minilm_parts["text_encoder"], minilm_parts["tokenizer"])
    assert encoder.hidden_size == 384
    embeds, mask = encoder.encode([with_task_prefix("a blue star", "generate")], "generate")
    assert embeds.shape[-1] == 384 and embeds.shape[1] == mask.sum()


def test_cached_encoder_gives_each_text_its_own_states_whatever_the_batch(minilm_parts):
    """Training memoises prompts; a text's states must not depend on the batch it first came in (exact resume)."""
    plain = prompt_encoder_for(minilm_parts["text_encoder"], minilm_parts["tokenizer"])
    short, long = "[Generate]: a star", "[Generate]: three green crosses above a red square on a white background"
    size = {t: int(plain.encode([t], "generate")[1].sum()) * 384 * 4 for t in (short, long, "")}  # fp32 bytes
    cached = CachedPromptEncoder(plain, max_bytes=size[long] + size[""])
    embeds, mask = cached.encode([short, long, ""], "generate")
    assert (cached.hits, cached.misses) == (0, 3) and list(cached.cache) == [(long, "generate", 200), ("", "generate", 200)]
    assert cached.bytes == size[long] + size[""]  # the least recently used text went
    for i, text in enumerate([short, long, ""]):
        alone, alone_mask = plain.encode([text], "generate")
        n = int(alone_mask.sum())
        assert int(mask[i].sum()) == n and torch.equal(embeds[i, :n], alone[0, :n])
    again, again_mask = CachedPromptEncoder(plain).encode([long, short], "generate")  # fresh cache, other batch
    assert torch.equal(again[1][again_mask[1] == 1], embeds[0][mask[0] == 1])
    cached.encode([long], "generate")
    assert cached.hits == 1 and cached.hidden_size == 384
