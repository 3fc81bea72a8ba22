#!/usr/bin/env python3
"""Rebuild the two demo corpora shipped in ``w2vformer/data/`` from Debian packages.

    apt-get update && apt-get install -y --no-install-recommends diatheke   # the SWORD command-line reader
    python scripts/build_demo_corpora.py            # writes w2vformer/data/demo-{en,zh}.txt.gz

The data packages themselves are fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a
temporary folder (nothing else is installed). Sources and licences (see ``w2vformer/data/README.md``):

- English (``demo-en.txt.gz``): the World English Bible, protestant canon (Genesis to Revelation), from
  ``sword-text-web``; public domain. One verse per line, original casing and punctuation; verse
  references, Strong's markup and the glossary appended to the last verse are removed.
- Chinese (``demo-zh.txt.gz``): the 300 Tang poems and 100 Song ci of ``fortunes-zh`` (the poems are
  public domain; the package is GPL-3.0+) followed by the prose paragraphs of the Simplified Chinese
  Debian Reference from ``debian-reference-zh-cn`` (GPL-2.0+; the <p> paragraphs of its HTML chapters
  that are at least 30% CJK). One poem line or paragraph per line,
  not word-segmented (the tokenizers split CJK characters).

The output is deterministic (gzip mtime 0), so a rebuild gives byte-identical files.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import html
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "w2vformer" / "data"
PACKAGES = ["sword-text-web", "fortunes-zh", "debian-reference-zh-cn"]
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def fetch(packages: list[str], root: Path) -> None:
    """``apt-get download`` each package into ``root`` and unpack it there with ``dpkg -x``."""
    subprocess.run(["apt-get", "download", *packages], cwd=root, check=True)
    for deb in sorted(glob.glob(str(root / "*.deb"))):
        subprocess.run(["dpkg", "-x", deb, str(root / "fs")], check=True)


# --- English: World English Bible -------------------------------------------------------------------
def web_verses(root: Path):
    env = dict(os.environ, SWORD_PATH=str(root / "fs" / "usr" / "share" / "sword"))
    # OSIS output keeps word boundaries as <w> elements; the plain renderer glues some words together.
    out = subprocess.run(
        ["diatheke", "-b", "engWEB2015eb", "-f", "OSIS", "-k", "Gen-Rev"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout
    for line in out.splitlines():
        m = re.match(r"^(.+?) (\d+):(\d+): (.*)$", line)
        if not m:
            continue
        # A psalm's title is printed before the reference ("A Psalm by David.  Psalms 3:1: ...").
        head = re.sub(r"<[^>]+>", "", m.group(1)).split("  ")
        book, text = head[-1].strip(), m.group(4)
        text = text.split("The following words used in the World English Bible")[0]  # glossary after Rev 22:21
        text = re.sub(r"<note\b.*?</note>", " ", text)
        text = text.replace("</w><w", "</w> <w")
        text = re.sub(r"<[^>]+>", "", text)
        text = " ".join(html.unescape(text).split())
        if text:
            yield book, text


DEUTEROCANON = {
    "Tobit", "Judith", "Esther (Greek)", "Wisdom", "Sirach", "Baruch", "Prayer of Azariah", "Susanna",
    "Bel and the Dragon", "I Maccabees", "II Maccabees", "I Esdras", "Prayer of Manasses", "Additional Psalm",
    "III Maccabees", "II Esdras", "IV Maccabees",
}


def build_en(root: Path, out: Path) -> tuple[int, int]:
    lines = [t for b, t in web_verses(root) if b not in DEUTEROCANON]
    return write_gz(out, lines)


# --- Chinese: Tang and Song poems, Debian Reference --------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def poems(path: Path):
    """fortune cookies separated by '%': a title line, an author line, then the verses."""
    text = ANSI.sub("", path.read_text(encoding="utf-8"))
    for cookie in text.split("\n%\n"):
        for line in cookie.splitlines():
            line = line.strip()
            if line.startswith("作者："):
                line = line[len("作者："):]
            if line and line != "%":
                yield line


def debian_reference(folder: Path):
    """The <p> paragraphs of the HTML chapters, kept when at least 30% of their characters are CJK."""
    for path in sorted(folder.glob("*.zh-cn.html")):
        page = path.read_text(encoding="utf-8")
        for m in re.finditer(r"<p\b[^>]*>(.*?)</p>", page, re.S):
            para = " ".join(html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).split())
            chars = [c for c in para if not c.isspace()]
            if len(chars) >= 10 and sum(bool(CJK.match(c)) for c in chars) >= 0.3 * len(chars):
                yield para


def build_zh(root: Path, out: Path) -> tuple[int, int]:
    games = root / "fs" / "usr" / "share" / "games" / "fortunes"
    lines = list(poems(games / "tang300")) + list(poems(games / "song100"))
    lines += list(debian_reference(root / "fs" / "usr" / "share" / "debian-reference"))
    return write_gz(out, lines)


def write_gz(out: Path, lines: list[str]) -> tuple[int, int]:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    os.replace(tmp, out)
    return len(lines), len(data)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=DATA, help="output folder (default: w2vformer/data)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fetch(PACKAGES, root)
        for name, build in [("demo-en.txt.gz", build_en), ("demo-zh.txt.gz", build_zh)]:
            n_lines, n_bytes = build(root, args.out / name)
            size = (args.out / name).stat().st_size
            print(f"{name}: {n_lines:,d} lines, {n_bytes:,d} bytes of UTF-8 text, {size:,d} bytes gzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
