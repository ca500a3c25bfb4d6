import json

import pytest

from dreamlite.cli import main
from dreamlite.errors import DreamLiteError
from dreamlite.models.presets import build_unet, count_parameters, get_preset


def test_paper_preset_matches_official_parameter_count(capsys):
    assert main(["info", "--preset", "paper", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert abs(info["unet_parameters"] - 389.97e6) / 389.97e6 < 0.005
    assert info["text_encoder"] == "qwen3-vl"


def test_paper_preset_architecture():
    cfg = get_preset("paper").unet
    assert cfg["block_out_channels"] == (256, 512, 896)
    assert cfg["num_kv_heads"] == 1 and cfg["qk_norm"] == "rms_norm" and cfg["use_sep_conv"]
    assert cfg["down_block_types"][:2] == ("DreamLiteCrossAttnNoSelfAttnDownBlock2D",) * 2
    assert cfg["up_block_types"][-1] == "DreamLiteUpBlock2D"


def test_tiny_preset_is_a_few_million_parameters():
    n = count_parameters(build_unet("tiny"))
    assert 1e6 < n < 15e6


def test_unknown_preset_is_an_error():
    with pytest.raises(DreamLiteError, match="unknown preset"):
        get_preset("papr")
