"""Atomic file writes: a killed process leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from .errors import DreamLiteError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: temporary files are private (0600), what they become should not be


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path` to write to; it replaces `path` only if the block finishes.

    The temporary file keeps the target's extension, so writers that pick a format by name (PIL, safetensors)
    write the right one. Whatever goes wrong, the temporary file is removed and `path` is untouched.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DreamLiteError(f"{path} is a folder; name a file")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str | os.PathLike, text: str):
    """Write a whole text file (JSON, YAML) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder beside `path` to fill; it replaces the folder `path` (and everything in it) only if
    the block finishes, so a killed or failed build never leaves a folder that looks complete. Check first with
    `check_replaceable` that `path` holds nothing but an earlier build."""
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not os.path.isdir(path):
        raise DreamLiteError(f"{path} is a file, not a folder")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(path)}-")
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        old = None
        if os.path.lexists(path):
            old = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(path)}-")
            os.replace(path, os.path.join(old, "previous"))
        os.replace(tmp, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(path: str | os.PathLike, marker: str):
    """Refuse an output folder that holds something other than an earlier build of ours (recognised by its
    `marker` file), so that rebuilding into it never deletes a user's files."""
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise DreamLiteError(f"{path} is a file, not a folder")
    if os.path.isdir(path) and os.listdir(path) and not os.path.isfile(os.path.join(path, marker)):
        raise DreamLiteError(f"{path} is not empty and has no {marker}; give a new or empty folder")
