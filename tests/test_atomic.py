import os

import pytest
from PIL import Image

from dreamlite.atomic import atomic_path, write_text_atomic
from dreamlite.image_io import save_image_atomic


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half of the new")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_completed_write_replaces_and_keeps_the_extension(tmp_path):
    path = tmp_path / "sub" / "x.png"  # the folder is created
    with atomic_path(path) as tmp:
        assert tmp.endswith(".png") and os.path.dirname(tmp) == str(path.parent)
    write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert os.listdir(path.parent) == ["x.png"]


def test_image_without_extension_is_written_as_png(tmp_path):
    save_image_atomic(Image.new("RGB", (4, 4), (255, 0, 0)), tmp_path / "image")
    with Image.open(tmp_path / "image") as im:
        assert im.format == "PNG" and im.getpixel((0, 0)) == (255, 0, 0)
