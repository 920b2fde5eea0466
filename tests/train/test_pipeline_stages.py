"""Pipelines with data stages: a stage writes records and the next trains on them through a
`stage:` reference; a finished pipeline re-runs nothing; repeated groups get their own
directories and the right references; config mistakes are one-line errors naming the key; the
`sample` stage writes exactly what `generation.sample_and_grade` produced."""

import json
import os
import sys

import pytest
from ml_collections import ConfigDict

import jaxreason.train as train_registry
import train_runs as runs

if str(runs.REPO) not in sys.path:  # recipes live in configs/ at the repository root
    sys.path.insert(0, str(runs.REPO))
from configs import base  # noqa: E402
from jaxreason.train import data_stages, pipeline  # noqa: E402
from jaxreason.train.errors import ConfigError  # noqa: E402

COUNTDOWN = dict(num_train=16, num_eval=4, num_numbers=(3, 3), number_range=(1, 9),
                 target_range=(5, 20))


def _tiny(config: ConfigDict) -> ConfigDict:
    """A one-layer model, a few steps, nothing slow (8 simulated devices: batch 8)."""
    config.model.preset = "llama-tiny"
    config.model.overrides.hidden_size = 32
    config.model.overrides.intermediate_size = 64
    config.model.overrides.num_layers = 1
    config.model.overrides.num_heads = 2
    config.model.overrides.num_kv_heads = 1
    config.model.overrides.head_dim = 16
    config.model.overrides.max_position_embeddings = 512
    config.tokenizer.train_vocab_size = 1024  # a Countdown example is ~165 tokens
    config.data.task = "countdown"
    config.data.max_length = 256
    config.data.num_threads = 1
    config.train.batch_size = 8
    config.train.num_steps = 2
    config.train.logprob_chunk_size = 64
    config.optim.learning_rate = 1e-3
    config.checkpoint.every = 2
    config.checkpoint.async_save = False
    config.log.every = 0
    config.log.progress = False
    config.log.tensorboard = False
    config.eval.task = "countdown"
    config.eval.max_new_tokens = 4
    config.eval.batch_size = 8
    config.eval.grading_workers = 0
    return config


def records_then_sft_config() -> ConfigDict:
    c = _tiny(base.get_config())
    c.trainer = "pipeline"
    c.pipeline.stages = "records,sft"
    c.data.generator = "countdown"
    # generator_options is an open section: a stage may set keys the recipe does not have
    c.stages.records = ConfigDict({"data": {"generator_options": COUNTDOWN}})
    c.stages.sft.data = ConfigDict({"generator": None, "train": "stage:records.train"})
    c.stages.sft.eval = ConfigDict({"data": "stage:records.held_out"})
    return c


class Spy:
    """Wraps `jaxreason.train.get_trainer`: remembers (kind, config, workdir) of each call;
    with `fail=True` any call to a stage function fails the test."""

    def __init__(self, real, fail=False):
        self.real, self.fail, self.calls = real, fail, []

    def __call__(self, kind):
        fn = self.real(kind)

        def run(config, workdir):
            if self.fail:
                raise AssertionError(f"stage function {kind!r} ran in {workdir}")
            self.calls.append((kind, config, workdir))
            return fn(config, workdir)

        run.outputs = getattr(fn, "outputs", None) or ("model",)
        return run


def _mtimes(root):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files if f != pipeline.PIPELINE_SUMMARY}


def test_records_stage_feeds_sft_and_a_rerun_skips_every_stage(tmp_path, monkeypatch, capsys):
    config = records_then_sft_config()
    workdir = str(tmp_path / "run")
    spy = Spy(train_registry.get_trainer)
    monkeypatch.setattr(train_registry, "get_trainer", spy)
    summaries = pipeline.train(config, workdir)

    # The data stage wrote the generator's records and recorded them as outputs.
    records_dir = tmp_path / "run" / "records"
    outputs = summaries["records"]["outputs"]
    assert outputs == {"train": str(records_dir / "train.jsonl"),
                       "held_out": str(records_dir / "held_out.jsonl")}
    train_lines = [json.loads(l) for l in (records_dir / "train.jsonl").read_text().splitlines()]
    held_out = [json.loads(l) for l in (records_dir / "held_out.jsonl").read_text().splitlines()]
    assert len(train_lines) == 16 and len(held_out) == 4
    assert {"nums", "target"} <= set(train_lines[0])
    assert json.loads((records_dir / "summary.json").read_text())["outputs"] == outputs

    # The SFT stage got the recorded paths through its `stage:` references and trained on them.
    (kind_r, _, _), (kind_s, sft_config, sft_dir) = spy.calls
    assert (kind_r, kind_s) == ("records", "sft")
    assert sft_config.data.train == outputs["train"] and sft_config.data.generator is None
    assert sft_config.eval.data == outputs["held_out"]
    assert sft_dir == os.path.join(workdir, "sft")
    sft = summaries["sft"]
    assert sft["status"] == "completed" and sft["step"] == 2
    assert sft["outputs"] == {"model": os.path.join(workdir, "sft", "export")}
    assert sft["eval"]["num_examples"] == 4  # graded the held-out records file
    assert os.path.exists(os.path.join(workdir, "sft", "export", "config.json"))

    record = json.loads((tmp_path / "run" / pipeline.PIPELINE_SUMMARY).read_text())
    assert list(record["stages"]) == ["records", "sft"]
    assert record["stages"]["sft"]["outputs"]["model"] == sft["outputs"]["model"]
    assert record["stages"]["records"]["trainer"] == "records"
    assert not any(s["skipped"] for s in record["stages"].values())

    # Again on the finished workdir: no stage function runs, no file changes, both say skipped.
    before = _mtimes(workdir)
    capsys.readouterr()
    monkeypatch.setattr(train_registry, "get_trainer", Spy(spy.real, fail=True))
    again = pipeline.train(config, workdir)
    printed = capsys.readouterr().out
    assert "[records] finished earlier: skipped" in printed
    assert "[sft] finished earlier: skipped" in printed
    assert again["sft"]["outputs"] == sft["outputs"]
    assert _mtimes(workdir) == before
    record = json.loads((tmp_path / "run" / pipeline.PIPELINE_SUMMARY).read_text())
    assert all(s["skipped"] for s in record["stages"].values())

    # An interrupted stage (no summary.json) runs again and resumes from its checkpoint;
    # the finished stage before it is still skipped.
    os.remove(os.path.join(workdir, "sft", pipeline.SUMMARY))
    spy = Spy(spy.real)
    monkeypatch.setattr(train_registry, "get_trainer", spy)
    resumed = pipeline.train(config, workdir)
    assert [kind for kind, _, _ in spy.calls] == ["sft"]
    assert resumed["sft"]["step"] == 2
    train_steps = [json.loads(l) for l in open(os.path.join(workdir, "sft", "metrics.jsonl"))
                   if json.loads(l).get("kind") == "train"]
    assert len(train_steps) == 2  # resumed at step 2: nothing trained twice


# ----------------------------------------------------------------------------- iterations

def _fake_stages(monkeypatch):
    """Fast stand-ins: a model stage exports an empty directory, a data stage writes one file;
    both remember the config they ran with."""
    calls = []

    def model_stage(config, workdir):
        calls.append((os.path.basename(workdir), config))
        os.makedirs(os.path.join(workdir, "export"), exist_ok=True)
        return {"status": "completed", "step": 1, "export": os.path.join(workdir, "export")}

    def data_stage(config, workdir):
        calls.append((os.path.basename(workdir), config))
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "data.jsonl")
        with open(path, "w") as f:
            f.write("{}\n")
        return {"status": "completed", "outputs": {"data": path}}

    data_stage.outputs = ("data",)
    fakes = {"sft": model_stage, "records": data_stage}
    monkeypatch.setattr(train_registry, "get_trainer", lambda kind: fakes[kind])
    return calls


def iterated_config() -> ConfigDict:
    c = base.get_config()
    c.trainer = "pipeline"
    c.model.preset = "llama-tiny"
    c.pipeline.stages = "warmup,(make,learn)x3,final"
    c.stages.warmup = ConfigDict({"trainer": "sft"})
    c.stages.make = ConfigDict({"trainer": "records"})
    c.stages.learn = ConfigDict({"trainer": "sft", "data": {"train": "stage:make.data"}})
    c.stages.final = ConfigDict({"trainer": "sft", "data": {"train": "stage:make.2.data"},
                                 "eval": {"data": "stage:make.data"}})
    return c


def test_repeated_group_runs_each_iteration_in_its_own_directory(tmp_path, monkeypatch, capsys):
    calls = _fake_stages(monkeypatch)
    workdir = str(tmp_path / "run")
    summaries = pipeline.train(iterated_config(), workdir)
    order = ["warmup", "make.1", "learn.1", "make.2", "learn.2", "make.3", "learn.3", "final"]
    assert [name for name, _ in calls] == order
    assert list(summaries) == order
    assert sorted(p for p in os.listdir(workdir) if p != pipeline.PIPELINE_SUMMARY) == \
        sorted(order)
    got = dict(calls)
    export = lambda run: os.path.join(workdir, run, "export")  # noqa: E731
    data = lambda run: os.path.join(workdir, run, "data.jsonl")  # noqa: E731
    assert got["warmup"].model.preset == "llama-tiny" and got["warmup"].model.path is None
    for k in (1, 2, 3):
        previous = export("warmup") if k == 1 else export(f"learn.{k - 1}")
        make, learn = got[f"make.{k}"], got[f"learn.{k}"]
        assert make.pipeline.iteration == learn.pipeline.iteration == k
        assert make.trainer == "records" and learn.trainer == "sft"
        assert make.model.path == previous  # samples from the latest model
        assert learn.model.path == previous and learn.model.preset is None
        assert learn.tokenizer.path == previous and learn.tokenizer.train_vocab_size == 0
        assert learn.data.train == data(f"make.{k}")  # this iteration's data
    assert got["final"].pipeline.iteration == 0
    assert got["final"].model.path == export("learn.3")
    assert got["final"].data.train == data("make.2")  # an explicit iteration
    assert got["final"].eval.data == data("make.3")  # the latest one
    for run in order:
        with open(os.path.join(workdir, run, pipeline.SUMMARY)) as f:
            assert "outputs" in json.load(f)
    record = json.load(open(os.path.join(workdir, pipeline.PIPELINE_SUMMARY)))
    assert record["stages"]["learn.2"] == {
        "stage": "learn", "trainer": "sft", "iteration": 2,
        "dir": os.path.join(workdir, "learn.2"), "status": "completed", "skipped": False,
        "outputs": {"model": export("learn.2")}}

    # Interrupted in iteration 2: the finished runs are skipped, the rest run in order.
    for run in ("learn.2", "make.3", "learn.3", "final"):
        os.remove(os.path.join(workdir, run, pipeline.SUMMARY))
    calls.clear()
    capsys.readouterr()
    pipeline.train(iterated_config(), workdir)
    assert [name for name, _ in calls] == ["learn.2", "make.3", "learn.3", "final"]
    printed = capsys.readouterr().out
    assert "[make.2] finished earlier: skipped" in printed
    assert dict(calls)["learn.2"].data.train == data("make.2")


def test_an_explicit_model_path_reference_uses_that_model_and_its_tokenizer(tmp_path,
                                                                            monkeypatch):
    calls = _fake_stages(monkeypatch)
    c = base.get_config()
    c.trainer = "pipeline"
    c.model.preset = "llama-tiny"
    c.tokenizer.train_vocab_size = 300
    c.pipeline.stages = "sft_astro,sft_direct,sft_again"
    c.stages.sft_astro = ConfigDict({"trainer": "sft"})
    c.stages.sft_direct = ConfigDict({"trainer": "sft", "pipeline": {"inherit_model": False}})
    c.stages.sft_again = ConfigDict({"trainer": "sft", "model": {"path": "stage:sft_astro.model"}})
    pipeline.train(c, str(tmp_path))
    got = dict(calls)
    direct, again = got["sft_direct"], got["sft_again"]
    assert direct.model.path is None and direct.model.preset == "llama-tiny"  # from scratch
    assert direct.tokenizer.train_vocab_size == 300
    astro_export = str(tmp_path / "sft_astro" / "export")
    assert again.model.path == astro_export and again.model.preset is None
    assert again.tokenizer.path == astro_export and again.tokenizer.train_vocab_size == 0


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("edit, key, words", [
    (lambda c: setattr(c.pipeline, "stages", "records,(sft"), "pipeline.stages:", ["'('"]),
    (lambda c: setattr(c.pipeline, "stages", "records,(sft)x"), "pipeline.stages:",
     ["(a,b)x3"]),
    (lambda c: setattr(c.pipeline, "stages", "records,sft,nosuchstage"), "pipeline.stages:",
     ["'nosuchstage'", "stages.nosuchstage.trainer"]),
    (lambda c: setattr(c.stages.sft.data, "train", "stage:records.trian"),
     "stages.sft.data.train:", ["'trian'", "held_out"]),
    (lambda c: setattr(c.stages.sft.data, "train", "stage:recrods.train"),
     "stages.sft.data.train:", ["'recrods'"]),
    (lambda c: setattr(c.stages.sft.data, "train", "stage:records"), "stages.sft.data.train:",
     ["stage:<stage>.<output>"]),
    (lambda c: setattr(c.stages.records, "data", ConfigDict({"train": "stage:sft.model"})),
     "stages.records.data.train:", ["does not run before records"]),
    (lambda c: setattr(c.eval, "data", "stage:records.held_out"), "eval.data:",
     ["does not run before records"]),
    (lambda c: setattr(c.stages.sft, "trainer", "sfft"), "stages.sft.trainer:", ["'sfft'"]),
])
def test_config_mistakes_are_one_line_errors_naming_the_key(tmp_path, monkeypatch, edit, key,
                                                            words):
    monkeypatch.setattr(train_registry, "get_trainer", Spy(train_registry.get_trainer, fail=True))
    config = records_then_sft_config()
    edit(config)
    with pytest.raises(ConfigError) as error:
        pipeline.train(config, str(tmp_path / "run"))
    message = str(error.value)
    assert "\n" not in message and message.startswith(key), message
    for word in words:
        assert word in message, message
    assert not (tmp_path / "run").exists()  # nothing ran, nothing was written


# ----------------------------------------------------------------------------- sample

@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A random one-layer Llama + a BPE tokenizer trained on Countdown prompts, as a HF dir."""
    from jaxreason import tasks
    from jaxreason.data import synthetic
    from jaxreason.model.config import preset_config
    from jaxreason.model.model import create_model, save_pretrained
    from jaxreason.tokenizer import train_bpe_tokenizer

    task = tasks.get("countdown")
    train, _ = synthetic.generate("countdown", COUNTDOWN, 0)
    tokenizer = train_bpe_tokenizer([task.prompt(r) + task.reference_completion(r)
                                     for r in train], 1024)
    config = preset_config("llama-tiny", vocab_size=len(tokenizer), hidden_size=32,
                           intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=1,
                           head_dim=16, max_position_embeddings=512,
                           bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    directory = tmp_path_factory.mktemp("tiny_model")
    save_pretrained(create_model(config, seed=0), directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def sample_config(model_dir: str) -> ConfigDict:
    c = base.get_config()
    c.trainer = "sample"
    c.model.path = model_dir
    c.data.generator = "countdown"
    c.data.generator_options = ConfigDict(COUNTDOWN)
    c.data.task = "countdown"
    c.sample.n = 3
    c.sample.num_prompts = 8
    c.sample.batch_size = 4  # two batches of the same shape (one compile)
    c.sample.max_new_tokens = 8
    c.sample.temperature = 1.0
    c.sample.grading_workers = 0
    return c


def test_sample_stage_writes_the_graded_generations(tmp_path, tiny_model_dir):
    from jaxreason import tasks
    from jaxreason.generation import sample_and_grade
    from jaxreason.model.model import load_pretrained
    from jaxreason.prompting import prompt_token_ids
    from jaxreason.sampling import Sampler
    from jaxreason.tokenizer import load_tokenizer
    from jaxreason.train import build

    config = sample_config(tiny_model_dir)
    workdir = str(tmp_path / "sample")
    summary = data_stages.sample(config, workdir)
    outputs = summary["outputs"]
    assert outputs == {"samples": os.path.join(workdir, "samples.jsonl"),
                       "correct": os.path.join(workdir, "correct.jsonl")}
    lines = data_stages.read_jsonl(outputs["samples"])
    assert len(lines) == 8 * 3 and summary["num_samples"] == 24 and summary["num_prompts"] == 8
    assert [(l["prompt_index"], l["sample_index"]) for l in lines] == \
        [(p, s) for p in range(8) for s in range(3)]

    # The same Generations, sampled and graded directly: same texts, rewards, correctness.
    task = tasks.get("countdown")
    records, _ = build.generated_records(config)
    tokenizer = load_tokenizer(tiny_model_dir)
    fmt = data_stages.prompt_format(config)
    sampler = Sampler(load_pretrained(tiny_model_dir, mesh=build.build_mesh(config)), tokenizer)
    expected = []
    for batch, indices in enumerate([range(0, 4), range(4, 8)]):
        ids = [prompt_token_ids(task.prompt(records[i]), tokenizer, fmt) for i in indices]
        g = sample_and_grade(sampler, ids, [records[i] for i in indices],
                             data_stages.sampling_params(config, batch), task=task,
                             num_workers=0)
        assert g.num_rows == len(indices) * 3
        expected += list(zip(g.texts, g.rewards.tolist(), g.correct.tolist()))
    assert [(l["completion"], l["reward"], l["correct"]) for l in lines] == expected
    for line in lines:
        assert line["record"] == json.loads(json.dumps(records[line["prompt_index"]]))
        assert line["prompt"] == task.prompt(records[line["prompt_index"]])
        grade = task.grade(records[line["prompt_index"]], line["completion"])
        assert (line["reward"], line["correct"]) == (grade.reward, grade.correct)
    correct = data_stages.read_jsonl(outputs["correct"])
    assert correct == data_stages.correct_records(lines)
    assert summary["num_correct_records"] == len(correct)

    # Interrupted after the first batch: the second is sampled again, identically.
    with open(outputs["samples"]) as f:
        written = f.read()
    for name in ("summary.json", "samples.jsonl", "correct.jsonl",
                 os.path.join(data_stages.PARTS, "00001.jsonl")):
        os.remove(os.path.join(workdir, name))
    first_part = os.path.join(workdir, data_stages.PARTS, "00000.jsonl")
    mtime = os.stat(first_part).st_mtime_ns
    again = data_stages.sample(config, workdir)
    assert os.stat(first_part).st_mtime_ns == mtime  # batch 0 was not sampled again
    with open(outputs["samples"]) as f:
        assert f.read() == written
    assert again == summary
    assert data_stages.sample(config, workdir) == summary  # finished: returns its summary


def test_correct_records_are_distinct_correct_completions_per_prompt():
    line = lambda p, c, ok: {"prompt_index": p, "prompt": f"q{p}", "completion": c,  # noqa
                             "correct": ok}
    samples = [line(0, "a", True), line(0, "a", True), line(0, "b", False), line(0, "c", True),
               line(1, "a", True), line(1, "d", True), line(2, "x", False)]
    assert data_stages.correct_records(samples) == [
        {"prompt": "q0", "completion": "a"}, {"prompt": "q0", "completion": "c"},
        {"prompt": "q1", "completion": "a"}, {"prompt": "q1", "completion": "d"}]
    assert data_stages.correct_records(samples, max_per_prompt=1) == [
        {"prompt": "q0", "completion": "a"}, {"prompt": "q1", "completion": "a"}]


def test_records_stage_needs_a_generator(tmp_path):
    config = base.get_config()
    with pytest.raises(ConfigError, match=r"^data\.generator:"):
        data_stages.records(config, str(tmp_path))
