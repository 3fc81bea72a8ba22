"""The README's main job, `w2vformer quickstart`, on a trimmed shipped corpus (English and Chinese)."""

import json

import matplotlib.image

from w2vformer.cli import main
from w2vformer.quickstart import run_quickstart


def test_quickstart_cli_runs_the_whole_path_on_a_trimmed_corpus(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--quick", "--max-lines", "400", "--steps", "4", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    for heading in ("1. Tokenizer", "2. Word2Vec", "3. Transformers", "4. Generate", "5. Pictures", "Summary"):
        assert heading in printed
    assert "nearest to 'king'" in printed or "nearest to 'father'" in printed
    assert "Embeddings initialised from Word2Vec checkpoint" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert all(v.endswith("identical") for v in summary["reload_checks"].values()), summary["reload_checks"]
    assert set(summary["reload_checks"]) == {"decoder", "encoder", "word2vec"}
    for folder in ("word2vec", "decoder", "encoder", "tokenizer-wordlevel"):
        assert (out / folder / "tokenizer.json").is_file()
    assert len(summary["plots"]) >= 6
    for path in summary["plots"]:
        assert matplotlib.image.imread(path).std() > 0.02
    assert len(summary["generations"]) == 2


def test_quickstart_chinese(tmp_path):
    summary = run_quickstart(tmp_path / "zh", lang="zh", quick=True, max_lines=300, steps=3)
    assert summary["word2vec"]["vocab"] > 100  # characters
    assert summary["word2vec"]["neighbours"], "no neighbours printed for the Chinese probe characters"
    assert all(v.endswith("identical") for v in summary["reload_checks"].values())
