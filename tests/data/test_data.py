import json

import numpy as np
import torch

from dreamlite.data.imagefolder import ImageFolderDataset
from dreamlite.data.shapes import ShapesStream, shapes_sample
from dreamlite.data.transforms import collate
from dreamlite.data.webdataset_io import WebDatasetStream, write_shards


def test_stream_is_seeded_and_resumable():
    a = [s["key"] for s, _ in zip(ShapesStream("joint", 32, seed=1), range(6))]
    b = [s["key"] for s, _ in zip(ShapesStream("joint", 32, seed=1, start=3), range(3))]
    assert a[3:] == b
    s = next(iter(ShapesStream("edit", 32)))
    assert s["image"].shape == (3, 32, 32) and s["source"].shape == (3, 32, 32) and s["task"] == "edit"
    assert -1 <= s["image"].min() and s["image"].max() <= 1


def test_workers_get_disjoint_samples():
    loader = torch.utils.data.DataLoader(ShapesStream("t2i", 16, length=40), batch_size=4, num_workers=2, collate_fn=collate)
    keys = [k for batch in loader for k in batch["key"]]
    assert len(keys) == 40 and len(set(keys)) == 40


def test_webdataset_round_trip(tmp_path):
    samples = [shapes_sample(0, i, "joint", 32) for i in range(7)]
    shards = write_shards(samples, str(tmp_path / "shards"), per_shard=3)
    assert len(shards) == 3
    read = list(WebDatasetStream(str(tmp_path / "shards")))
    assert [r["key"] for r in read] == [s["key"] for s in samples]
    assert [r["task"] for r in read] == [s["task"] for s in samples]
    first = ((read[0]["image"].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    assert np.array_equal(first, samples[0]["image"])


def test_imagefolder_reports_bad_items_and_goes_on(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(tmp_path / "src.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    lines = [json.dumps({"file_name": "a.png", "text": "a red square"}),
             json.dumps({"file_name": "a.png", "source_file_name": "src.png", "text": "make it red"}),
             "{not json",
             json.dumps({"file_name": "missing.png", "text": "x"}),
             json.dumps({"file_name": "broken.png", "text": "x"}),
             json.dumps({"text": "no file"})]
    (tmp_path / "metadata.jsonl").write_bytes("\n".join(lines).encode() + b'\n{"file_name": "a.png", "text": "caf\xe9"}\n'
                                              + json.dumps({"file_name": "a.png", "source_file_name": 5, "text": "x"}).encode())
    dataset = ImageFolderDataset(str(tmp_path), size=16)
    items = list(dataset)
    assert [i["task"] for i in items] == ["generate", "edit"]
    assert dataset.errors.count == 6  # not UTF-8 and a numeric source name are bad rows too, not tracebacks


def test_a_source_with_nothing_usable_is_an_error_not_an_endless_loop(tmp_path):
    import pytest

    from dreamlite.errors import DreamLiteError

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metadata.jsonl").write_text("")
    with pytest.raises(DreamLiteError, match="no usable sample"):
        ImageFolderDataset(str(tmp_path / "empty"), size=16, repeat=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metadata.jsonl").write_text(json.dumps({"file_name": "missing.png", "text": "x"}))
    with pytest.raises(DreamLiteError, match="no usable sample.*missing.png"):
        next(iter(ImageFolderDataset(str(tmp_path / "bad"), size=16, repeat=True)))

    import io
    import tarfile

    with tarfile.open(tmp_path / "bad.tar", "w") as tar:  # empty png, no jpg; a caption that is not UTF-8
        for name, data in (("a.png", b""), ("a.txt", b"x"), ("b.png", b"\x89PNG"), ("b.txt", b"caf\xe9")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stream = WebDatasetStream(str(tmp_path / "bad.tar"), size=16)
    assert list(stream) == [] and stream.errors.count == 2
    with pytest.raises(DreamLiteError, match="no usable sample"):
        next(iter(WebDatasetStream(str(tmp_path / "bad.tar"), size=16, repeat=True)))
    with pytest.raises(DreamLiteError, match="do not exist"):
        WebDatasetStream(str(tmp_path / "nowhere" / "shard-{000000..000003}.tar"))


def test_shards_are_written_whole_and_never_mixed_with_older_ones(tmp_path):
    import pytest

    from dreamlite.errors import DreamLiteError

    out = tmp_path / "shards"
    write_shards([shapes_sample(0, i, "edit", 32) for i in range(4)], str(out), per_shard=2)
    write_shards([shapes_sample(0, i, "t2i", 32) for i in range(2)], str(out), per_shard=2)
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.tar"]  # no stale edit shard left
    assert [s["task"] for s in WebDatasetStream(str(out))] == ["generate", "generate"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    with pytest.raises(DreamLiteError, match="has no shard-000000.tar"):
        write_shards([shapes_sample(0, 0, "t2i", 32)], str(tmp_path / "mine"))


def test_t2i_stream_covers_every_prompt_family():
    from dreamlite.world.captions import CATEGORIES

    samples = [shapes_sample(2, i, "t2i", 64) for i in range(64)]
    assert {s["category"] for s in samples} == set(CATEGORIES)
    counting = [s for s in samples if s["category"] == "counting"]
    words = {"one": 1, "two": 2, "three": 3, "four": 4}
    for s in counting:  # the picture holds exactly the number the prompt names
        assert len(s["scene"]["objects"]) == words[s["text"].split()[3]], s["text"]


def test_data_cli_rejects_empty_shards_and_fractions_outside_0_1(tmp_path, capsys):
    from dreamlite.cli import main

    for extra, message in ((["--per-shard", "0"], "--per-shard must be at least 1"),
                           (["--task", "joint", "--edit-fraction", "5"], "--edit-fraction must be in [0, 1]")):
        assert main(["data", "shapes", "--out", str(tmp_path / "s"), "--num", "3", "--size", "32", *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
