"""`launch/eval.py`'s trainer on a tiny trained model: the report, per-item results that agree
with the grader, resume after a kill, and the same results from a run's export, its Orbax
checkpoint and the in-training evaluator."""

import json
import shutil

import pytest

from eval_helpers import eval_config, tiny_sft_config, write_held_out
from jaxreason import tasks
from jaxreason.train import get_trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_suite")
    config = tiny_sft_config()
    summary = get_trainer("sft")(config, str(root / "run"))
    held_out = write_held_out(config, root / "held_out.jsonl")
    return root, summary, held_out


def _items(directory):
    with open(directory / "countdown_test" / "items.jsonl") as f:
        return [json.loads(line) for line in f]


def test_report_figures_and_items_agree_with_the_grader(trained):
    root, _, held_out = trained
    config = eval_config(str(root / "run"), str(held_out), n=3, temperature=1.0,
                         max_new_tokens=24)
    summary = get_trainer("evaluate")(config, str(root / "ev"))
    report = json.loads((root / "ev" / "report.json").read_text())["benchmarks"]
    figs = report["countdown_test"]
    assert figs["num_items"] == 20 and figs["samples_per_item"] == 3
    items = _items(root / "ev")
    assert [it["index"] for it in items] == list(range(20))
    task = tasks.get("countdown", reward="tinyzero")
    correct = []
    for it in items:
        for s in [it["greedy"]] + it["samples"]:
            grade = task.grade(it["record"], s["completion"])
            assert (grade.correct, grade.extracted) == (s["correct"], s["extracted"])
        correct.append([s["correct"] for s in it["samples"]])
    assert figs["pass@1_mean"]["value"] == pytest.approx(
        sum(map(sum, correct)) / (3 * len(correct)))
    assert figs["pass@3"]["value"] >= figs["pass@2"]["value"] >= figs["pass@1"]["value"]
    assert figs["greedy_accuracy"]["ci_low"] <= figs["greedy_accuracy"]["value"] <= \
        figs["greedy_accuracy"]["ci_high"]
    assert summary["eval"]["countdown_test"] == figs["greedy_accuracy"]["value"]
    assert "| countdown_test | 20 |" in (root / "ev" / "report.md").read_text()


def test_a_killed_evaluation_resumes_where_it_stopped(trained, monkeypatch):
    root, _, held_out = trained
    settings = dict(n=2, temperature=1.0, max_new_tokens=16)
    whole = root / "ev_whole"
    get_trainer("evaluate")(eval_config(str(root / "run"), str(held_out), **settings),
                            str(whole))
    killed = root / "ev_killed"
    (killed / "countdown_test").mkdir(parents=True)
    lines = (whole / "countdown_test" / "items.jsonl").read_text().splitlines(keepends=True)
    # batch 0 complete (8 items), batch 1 cut mid-way, half a line at the end
    (killed / "countdown_test" / "items.jsonl").write_text("".join(lines[:11]) + lines[11][:30])
    import jaxreason.generation as generation

    calls = []
    real = generation.sample_and_grade

    def counting(sampler, prompts, *args, **kwargs):
        calls.append(len(prompts))
        return real(sampler, prompts, *args, **kwargs)

    monkeypatch.setattr(generation, "sample_and_grade", counting)
    get_trainer("evaluate")(eval_config(str(root / "run"), str(held_out), **settings),
                            str(killed))
    assert calls == [8, 8, 4, 4]  # batches 1 and 2, greedy then sampled; batch 0 skipped
    assert _items(killed) == _items(whole)


def test_checkpoint_export_and_in_training_evaluation_agree(trained):
    root, train_summary, held_out = trained
    settings = dict(n=0, max_new_tokens=24)
    get_trainer("evaluate")(eval_config(str(root / "run" / "export"), str(held_out), **settings),
                            str(root / "ev_export"))
    no_export = root / "run_without_export"
    shutil.copytree(root / "run", no_export, ignore=shutil.ignore_patterns("export"))
    get_trainer("evaluate")(eval_config(str(no_export), str(held_out), **settings),
                            str(root / "ev_ckpt"))
    from_export = [it["greedy"]["completion"] for it in _items(root / "ev_export")]
    assert [it["greedy"]["completion"] for it in _items(root / "ev_ckpt")] == from_export
    accuracy = sum(it["greedy"]["correct"] for it in _items(root / "ev_export")) / 20
    assert train_summary["eval"]["accuracy"] == pytest.approx(accuracy)
    # the in-training evaluator wrote the same per-item results and report for its last step
    final = root / "run" / "eval" / f"step_{train_summary['step']}"
    with open(final / "items.jsonl") as f:
        in_training = [json.loads(line)["greedy"]["completion"] for line in f]
    assert in_training == from_export
    report = json.loads((final / "report.json").read_text())["benchmarks"]["held_out"]
    assert report["greedy_accuracy"]["value"] == pytest.approx(accuracy)


def test_scaling_report_has_every_method_and_consistent_oracle(trained):
    import importlib.util
    import pathlib

    root, _, held_out = trained
    spec = importlib.util.spec_from_file_location(
        "countdown_scaling", pathlib.Path(__file__).resolve().parents[2] / "configs" / "eval" /
        "countdown_scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.model.path = str(root / "run")
    c.suite.countdown_test.path = str(held_out)
    c.suite.countdown_test.num_items = 8
    c.suite.countdown_test.max_new_tokens = 16
    c.scaling.ns, c.scaling.beams, c.scaling.thresholds = "1,2,4", "2x2", "0.5"
    c.scaling.beam_rounds, c.scaling.beam_step_tokens = 2, 8
    summary = get_trainer("scaling")(c, str(root / "scaling"))
    curves = json.loads((root / "scaling" / "scaling.json").read_text())
    assert (root / "scaling" / "scaling.png").stat().st_size > 1000
    assert summary["outputs"]["plot"].endswith("scaling.png")
    assert set(curves) == {"pass@N (oracle best-of-N)", "best-of-N (mean log-prob)",
                           "weighted best-of-N (mean log-prob)", "self-consistency", "weighted self-consistency", "step beam search",
                           "adaptive self-consistency"}
    oracle = curves["pass@N (oracle best-of-N)"]
    assert [p["n"] for p in oracle] == [1, 2, 4]
    assert all(a["accuracy"] <= b["accuracy"] + 1e-12 for a, b in zip(oracle, oracle[1:]))
    assert oracle[-1]["accuracy"] == pytest.approx(oracle[-1]["first_n_oracle"])  # N = n
    for method in ("best-of-N (mean log-prob)", "self-consistency"):
        for p, o in zip(curves[method], oracle):  # no pick beats the verifier's coverage
            assert p["accuracy"] <= o["first_n_oracle"] + 1e-12
    tokens = [p["tokens"] for p in oracle]
    assert tokens == sorted(tokens) and tokens[0] <= 16
