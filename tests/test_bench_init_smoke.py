"""bench/bench_init.py runs end to end (its smallest configuration) and writes its table, plot and JSON."""

import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_init.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_init", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_init_smallest_configuration_end_to_end(tmp_path):
    bench = _load_bench()
    results = bench.main([
        "--max-lines", "300", "--eval-fraction", "0.2", "--eval-lines", "16", "--families", "clm", "mlm",
        "--arms", "random", "w2v", "--steps", "20", "--evals", "1", "--cls-steps", "3", "--cls-train", "40",
        "--cls-eval", "20", "--hidden-size", "16", "--heads", "2", "--layers", "1", "--vocab-size", "300",
        "--block-size", "32", "--batch-size", "4", "--w2v-epochs", "1", "--w2v-min-count", "1",
        "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work"),
    ])
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds_done"] == [0]
    for task in ("clm", "mlm"):
        random_run, w2v_run = (saved["runs"][task][arm]["0"] for arm in ("random", "w2v"))
        assert random_run["init"] == "random"
        # same tokenizer: the Word2Vec rows are copied one to one, none matched by string
        assert w2v_run["init"]["exact"] > 0 and w2v_run["init"]["string"] == 0
        for run in (random_run, w2v_run):
            assert run["metrics"]["steps"] == 20 and math.isfinite(run["metrics"]["eval_loss"])
            assert any("loss" in h for h in run["log_history"])
    # the two arms start from different embeddings, so their losses differ
    assert saved["runs"]["clm"]["random"]["0"]["metrics"]["eval_loss"] != saved["runs"]["clm"]["w2v"]["0"]["metrics"]["eval_loss"]
    cls = saved["classification"]
    assert cls["n_train"] > 0 and cls["n_eval"] > 0
    for variant in ("after-mlm", "no-mlm"):
        for arm in ("random", "w2v"):
            assert 0.0 <= cls["runs"][variant][arm]["0"]["accuracy"] <= 1.0
    table = (out / "table.md").read_text()
    assert "| clm (decoder) | w2v |" in table and "| mlm (encoder) | random |" in table and "accuracy" in table
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["seeds_done"] == [0]


def test_testament_labels_and_even_subset(tmp_path):
    bench = _load_bench()
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"line {i}\n" for i in range(10)) + "\n")
    lines = bench.read_lines(corpus)
    assert len(lines) == 10 and lines[3] == (3, "line 3")
    assert [i for i, _ in bench.even_subset(lines, 5)] == [0, 2, 4, 6, 8]
    assert bench.even_subset(lines, None) == lines
    lines = [(0, "In the beginning, God created the heavens and the earth."), (1, "a verse"),
             (2, "The book of the genealogy of Jesus Christ, the son of David"), (3, "another verse")]
    assert bench.testament_labels(lines) == {0: "OT", 1: "OT", 2: "NT", 3: "NT"}
    assert bench.testament_labels([(0, "no bible here")]) is None
