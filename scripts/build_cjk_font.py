"""Build w2vformer/data/fonts/w2vformer-cjk.ttf: a subset of Droid Sans Fallback (Apache-2.0, Google) that
covers every Chinese character of GB2312 (6,763 hanzi), CJK punctuation, full-width forms, kana and the
characters of the shipped Chinese corpus, so attention plots of Chinese text show characters, not boxes,
on machines without a CJK font. Plots prefer an installed CJK font when there is one.

Reproduce (Debian / Ubuntu):
    apt-get download fonts-droid-fallback && dpkg -x fonts-droid-fallback_*.deb /tmp/droid
    python scripts/build_cjk_font.py /tmp/droid/usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf
"""

import gzip
import sys
from pathlib import Path

from fontTools import subset

HERE = Path(__file__).resolve().parent.parent / "w2vformer" / "data"


def gb2312_hanzi() -> set[str]:
    chars = set()
    for row in range(0xB0, 0xF8):  # GB2312 rows 16-87: level 1 and level 2 hanzi
        for col in range(0xA1, 0xFF):
            try:
                chars.add(bytes([row, col]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def main(source: str) -> None:
    chars = gb2312_hanzi()
    chars |= {chr(c) for c in range(0x3000, 0x3040)}  # CJK symbols and punctuation
    chars |= {chr(c) for c in range(0x3040, 0x3100)}  # hiragana, katakana
    chars |= {chr(c) for c in range(0xFF00, 0xFFF0)}  # full-width forms
    for corpus in HERE.glob("*zh*"):
        if corpus.suffix == ".gz":
            chars |= set(gzip.open(corpus, "rt", encoding="utf-8").read())
        elif corpus.suffix == ".txt":
            chars |= set(corpus.read_text(encoding="utf-8"))
    chars = {c for c in chars if ord(c) > 0x2E7F}
    out = HERE / "fonts" / "w2vformer-cjk.ttf"
    out.parent.mkdir(parents=True, exist_ok=True)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    font = subset.load_font(source, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(chars)))
    subsetter.subset(font)
    tmp = out.with_suffix(".tmp")
    subset.save_font(font, str(tmp), options)
    tmp.replace(out)
    print(f"{out}: {len(chars)} characters, {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1])
