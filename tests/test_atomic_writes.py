"""Nothing lost: every file the package writes goes to a temporary name and is renamed into place, so a writer
killed at any moment leaves the old file or the new one, never a torn one.

The kill tests fork a writer that rewrites a large output in a loop (each round with different values) and
send it SIGKILL at random moments; afterwards the output must read back whole and hold exactly one round's
values. Leftover temporary files (``.name.*.tmp``: a SIGKILL cannot be cleaned up after) are allowed; a
partial file under the final name is not.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from pathlib import Path

import numpy as np
import torch

import w2vformer
from w2vformer._io import atomic_dir
from w2vformer.conversion.word2vec_format import read_word2vec, write_word2vec
from w2vformer.modeling.configuration_word2vec import Word2VecConfig
from w2vformer.modeling.modeling_word2vec import Word2VecModel

ROWS, DIM = 20_000, 100  # an 8 MB binary file: a write takes long enough to be killed in the middle
WORDS = [f"w{i}" for i in range(ROWS)]
PACKAGE = Path(w2vformer.__file__).resolve().parent.parent  # the repository root (editable install)


def _write_vectors(path: Path, round_: int) -> None:
    write_word2vec(path, WORDS, np.full((ROWS, DIM), round_, dtype=np.float32), binary=True, progress=False)


def _model():
    return Word2VecModel(Word2VecConfig(vocab_size=ROWS, vector_size=DIM, min_count=0),
                         token_counts=torch.ones(ROWS, dtype=torch.long))


def _write_checkpoint(path: Path, round_: int, model=None) -> None:
    model = model if model is not None else _model()
    with torch.no_grad():
        model.in_embed.weight.fill_(round_)
    with atomic_dir(path) as tmp:  # as train_word2vec / convert save their folders
        model.save_pretrained(tmp)


def _own_tqdm_lock() -> None:
    """Give this forked writer a tqdm write lock of its own. tqdm's default one is a process-shared semaphore
    inherited through fork; the writer is SIGKILLed at random moments, and killed while holding it (tqdm takes
    it to make and close every bar, disabled ones too: transformers' save_pretrained makes one), it stayed held
    and the next bar in this test process waited forever."""
    from tqdm import auto, std

    std.TqdmDefaultWriteLock.mp_lock = multiprocessing.RLock()
    for cls in {std.tqdm, auto.tqdm}:
        cls.set_lock(std.TqdmDefaultWriteLock())


def _writer_loop(kind: str, path: str, started) -> None:
    torch.set_num_threads(1)
    _own_tqdm_lock()
    started.set()
    if kind == "vectors":
        write = _write_vectors
    else:
        model = _model()
        write = lambda path, round_: _write_checkpoint(path, round_, model)  # noqa: E731
    for round_ in range(1, 1_000_000):
        write(Path(path), round_)


def _read_round(kind: str, path: Path) -> int:
    """The single round number an output holds (it must read back completely)."""
    if kind == "vectors":
        words, vectors = read_word2vec(path, progress=False)
        assert words == WORDS
    else:
        from safetensors.numpy import load_file

        assert (path / "config.json").is_file()
        vectors = load_file(path / "model.safetensors")["in_embed.weight"]
    values = np.unique(vectors)
    assert values.size == 1, f"torn output: values of several rounds {values[:5]}"
    return int(values[0])


def _kill_writer_repeatedly(tmp_path: Path, kind: str, kills: int = 6, most: int = 20) -> None:
    """At least ``kills`` kills, more (up to ``most``) until one landed mid-write and one after a finished round."""
    target = tmp_path / ("vectors.bin" if kind == "vectors" else "checkpoint")
    (_write_vectors if kind == "vectors" else _write_checkpoint)(target, 0)  # the old output
    rng = np.random.default_rng(0)
    ctx = multiprocessing.get_context("fork")  # no re-import: each writer starts in milliseconds
    killed_mid_write = 0
    seen = {0}
    for attempt in range(most):
        if attempt >= kills and killed_mid_write and len(seen) > 1:
            break
        started = ctx.Event()
        writer = ctx.Process(target=_writer_loop, args=(kind, str(target), started))
        writer.start()
        assert started.wait(30)
        time.sleep(float(rng.uniform(0.0, 0.6 if attempt < kills else 2.0)))  # a loaded machine writes slowly
        writer.kill()  # SIGKILL: no cleanup runs
        writer.join()
        assert writer.exitcode == -9
        seen.add(_read_round(kind, target))
        leftovers = [p for p in tmp_path.iterdir() if p.name != target.name]
        assert all(re.fullmatch(rf"\.{target.name}\.\w+\.(tmp|old)", p.name) for p in leftovers), leftovers
        killed_mid_write += bool(leftovers)
        for p in leftovers:  # tidy up so that the next round's leftovers are its own
            __import__("shutil").rmtree(p) if p.is_dir() else p.unlink()
    assert killed_mid_write, "no kill landed during a write: the test proved nothing"
    assert len(seen) > 1, "the writer never completed a round: lengthen the sleeps"


def test_killed_vector_file_writer_leaves_old_or_new_file(tmp_path):
    _kill_writer_repeatedly(tmp_path, "vectors")


def test_killed_checkpoint_writer_leaves_old_or_new_folder(tmp_path):
    _kill_writer_repeatedly(tmp_path, "checkpoint")


# ------------------------------------------------------------------------------------------------ audit
WRITE_CALL = re.compile(
    r"""\bopen\([^)]*["'][wax]b?\+?["']|\.savefig\(|torch\.save\(|np\.save[z]?\(|\.write_text\(|\.write_bytes\(|"""
    r"""shutil\.copy"""
)
SAVE_PRETRAINED = re.compile(r"\.save_pretrained\((\w+)")
STAGING_NAMES = {"tmp", "stage", "staging"}  # folders made by atomic_dir / mkdtemp, published by rename
# reviewed by hand: (file, line content) -> why it is safe
REVIEWED = {
    ("conversion/checkpoints.py", "shutil.copyfile(src / name, dst / name)"):
        "_carry_files(src, tmp): its only callers pass atomic_dir's tmp folder",
    ("w2vformer/plotting.py", 'fig.savefig(f, format="png", dpi=110, bbox_inches="tight")'):
        "f is the handle of `with atomic_write(path, \"wb\") as f`",
}


def test_package_writes_only_through_atomic_helpers():
    """Static audit of the package's source: no direct write call outside w2vformer/_io.py, and every
    save_pretrained writes into a staging folder (atomic_dir's ``tmp`` or a mkdtemp published by rename)."""
    offenders = []
    files = [p for folder in ("modeling", "tokenization", "conversion", "training", "w2vformer")
             for p in (PACKAGE / folder).rglob("*.py")]
    assert len(files) > 20
    for path in files:
        if path.name == "_io.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.lstrip().startswith(('"', "'", "save_pretrained")) or "``" in code:
                continue  # docstrings and examples
            staged = re.search(r"\b(tmp|stage|staging)\b", code)  # a copy into a staging folder is fine
            reviewed = (str(path.relative_to(PACKAGE)), line.strip()) in REVIEWED
            if WRITE_CALL.search(code) and not staged and not reviewed:
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
            for target in SAVE_PRETRAINED.findall(code):
                if target not in STAGING_NAMES and target not in ("save_directory",):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "writes that bypass w2vformer._io:\n" + "\n".join(offenders)
    checkpoints = (PACKAGE / "conversion" / "checkpoints.py").read_text(encoding="utf-8")
    assert re.findall(r"_carry_files\((\w+), (\w+)\)", checkpoints).count(("src", "tmp")) == 2


def test_outputs_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    import os
    import stat
    import tempfile

    from w2vformer._io import atomic_dir, atomic_write

    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "new.txt") as f:
            f.write("x")
        with atomic_dir(tmp_path / "folder") as d:
            (d / "inside.txt").write_text("x")
            fd, private = tempfile.mkstemp(dir=d)  # as transformers' save_pretrained writes model.safetensors
            os.close(fd)
        (tmp_path / "kept.txt").write_text("old")
        os.chmod(tmp_path / "kept.txt", 0o640)
        with atomic_write(tmp_path / "kept.txt") as f:
            f.write("new")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "folder" / Path(private).name).stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "kept.txt").stat().st_mode) == 0o640  # replacing keeps the file's mode
