"""Crash-safe writes: everything the package writes goes to a temporary name and is renamed into place.

A reader (or a user whose job was killed) then finds either the old file or the new one, never a torn one.

    with atomic_write("vectors.bin", "wb") as f:
        f.write(data)

    with atomic_dir("out/model") as tmp:       # tmp is an empty sibling folder
        model.save_pretrained(tmp)              # renamed to out/model on success only
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_write", "atomic_dir", "check_input_files", "publish_files", "read_json_file", "open_safetensors"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have (or the old file's)
        os.chmod(tmp, (path.stat().st_mode & 0o7777) if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    If ``path`` exists it is moved aside first and removed only after the new folder is in place, so
    at every instant either the old or the new complete folder is at ``path``. On an exception the
    temporary folder is deleted and ``path`` is untouched.

    Args:
        path: the final folder.
        overwrite: if False and ``path`` exists and is not empty, raise ``FileExistsError`` up front.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{str(path)!r} exists and is a file; choose a folder path for the output")
    if not overwrite and path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{str(path)!r} exists and is not empty; pass overwrite=True or choose another folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's folder is private (0700); a plain mkdir's is not
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _widen_private_files(tmp)
    if path.exists() and _exchange(tmp, path):  # one atomic swap: path never goes missing
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    old = None
    if path.exists():  # elsewhere: two renames, with an instant where only the .old folder exists
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rmdir(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _widen_private_files(folder: Path) -> None:
    """Give files that a writer created private (0600: ``tempfile.mkstemp``, as transformers' safetensors save
    does) the permissions a plain ``open`` would have given them under the umask, so that a saved folder is
    readable by the others a folder made with ``mkdir`` + ``open`` is readable by."""
    umask = _umask()
    for root, dirs, files in os.walk(folder):
        for name in files + dirs:
            item = os.path.join(root, name)
            mode = os.lstat(item).st_mode
            if not (mode & 0o077) and not os.path.islink(item):
                executable = os.path.isdir(item) or mode & 0o100
                os.chmod(item, (0o777 if executable else 0o666) & ~umask)


def _umask() -> int:
    """The process's umask, read without changing it where the system allows (os.umask can only swap it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if sys.platform != "linux":
        return False
    try:
        import ctypes

        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no libc symbol (glibc < 2.28, musl)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):  # filesystem cannot swap
        return False
    raise OSError(err, os.strerror(err), str(b))


def check_input_files(paths) -> list[Path]:
    """Return ``paths`` as a list of existing files, or raise ``FileNotFoundError`` naming the first missing one."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(f"input file {str(p)!r} does not exist; check the path")
        if p.is_dir():
            raise IsADirectoryError(f"input {str(p)!r} is a folder; pass the text files inside it")
        out.append(p)
    if not out:
        raise ValueError("no input files given; pass at least one text file")
    return out


def publish_files(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> list[Path]:
    """Move every file of ``src_dir`` into ``dst_dir`` (created if needed), each by an atomic rename.

    For outputs that must live in a folder which also holds other things (a training run's folder with its
    ``checkpoints/``): each published file appears whole or not at all. ``src_dir`` should be a temporary
    folder on the same filesystem (e.g. made with ``tempfile.mkdtemp(dir=dst_dir)``); it is removed.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    moved = []
    for f in sorted(src.rglob("*")):
        if f.is_file():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, target)
            moved.append(target)
    shutil.rmtree(src, ignore_errors=True)
    return moved


def read_json_file(path: str | os.PathLike):
    """Parse a JSON file (a checkpoint's ``config.json``, ...), raising ``ValueError`` that names the file
    when it is not JSON (json's own message names only a line and column)."""
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(path)!r} is not valid JSON ({e}); repair the file or save the checkpoint again") from None


def open_safetensors(path: str | os.PathLike, framework: str = "numpy"):
    """``safetensors.safe_open(path)``, raising ``ValueError`` naming the file when it is truncated or corrupted
    (safetensors' own message, e.g. "incomplete metadata, file not fully covered", names no file).

    Returns:
        The open ``safe_open`` handle (use it as a context manager).
    """
    from safetensors import SafetensorError, safe_open

    try:
        return safe_open(os.fspath(path), framework=framework)
    except SafetensorError as e:
        raise ValueError(
            f"{str(path)!r} is not a readable safetensors file ({e}): it is truncated or corrupted; "
            "save or download the checkpoint again"
        ) from None
