import os
from pathlib import Path

import pytest
from PIL import Image

from dreamlite.atomic import atomic_dir, atomic_path, check_replaceable, write_text_atomic
from dreamlite.errors import DreamLiteError
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


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    """mkstemp and mkdtemp make private entries; what lands at the path is readable like anything the user writes."""
    umask = os.umask(0)
    os.umask(umask)
    write_text_atomic(tmp_path / "a.json", "{}")
    with atomic_dir(tmp_path / "folder"):
        pass
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask


def test_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "suite"
    with atomic_dir(target) as tmp:
        Path(tmp, "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            Path(tmp, "b.txt").write_text("half of the second")
            raise RuntimeError("killed mid-build")
    assert os.listdir(target) == ["a.txt"] and os.listdir(tmp_path) == ["suite"]
    with atomic_dir(target) as tmp:
        Path(tmp, "c.txt").write_text("second")
    assert os.listdir(target) == ["c.txt"] and os.listdir(tmp_path) == ["suite"]


def test_a_users_files_are_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    with pytest.raises(DreamLiteError, match="is a file"):
        with atomic_dir(tmp_path / "notes.txt"):
            pass
    with pytest.raises(DreamLiteError, match="is a folder"):
        with atomic_path(tmp_path / "mine"):
            pass
    with pytest.raises(DreamLiteError, match="has no marker.json"):
        check_replaceable(tmp_path / "mine", "marker.json")
    check_replaceable(tmp_path / "new", "marker.json")  # absent, empty or an earlier build: fine
    (tmp_path / "mine" / "marker.json").write_text("{}")
    check_replaceable(tmp_path / "mine", "marker.json")
    assert (tmp_path / "notes.txt").read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["mine", "notes.txt"]
