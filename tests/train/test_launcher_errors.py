"""Bad input ends a run with one clear line naming what to fix; a diverged loss stops the run
at the step it happened and keeps the last good checkpoint."""

import json

import pytest

import train_runs as runs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return runs.write_arithmetic_data(tmp_path_factory.mktemp("data") / "train.jsonl", n=64)


def _one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def test_unknown_config_key_is_one_line_naming_the_key(tmp_path, data):
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.optim.learning_rte=1e-3"))
    assert "optim.learning_rte" in line and "learning_rate" in line  # names the known keys


def test_unknown_config_section_is_one_line_naming_the_key(tmp_path, data):
    line = _one_line_error(runs.run(tmp_path, "--config.trian.batch_size=3"))
    assert "trian" in line


def test_wrong_value_type_is_one_line_naming_the_key(tmp_path, data):
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.train.batch_size=four"))
    assert "--config.train.batch_size" in line and "four" in line


def test_bad_config_value_names_the_key(tmp_path, data):
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.train.averaging=per_batch"))
    assert "train.averaging" in line and "per_batch" in line


def test_missing_model_directory_is_one_line(tmp_path, data):
    line = _one_line_error(runs.run(
        tmp_path, f"--config.data.train={data}", f"--config.model.path={tmp_path / 'nope'}",
        config=runs.REPO / "configs" / "sft_llama3_8b_math.py"))
    assert "model.path" in line and "does not exist" in line and str(tmp_path / "nope") in line


def test_dataset_missing_a_field_names_file_line_and_field(tmp_path):
    data = runs.write_arithmetic_data(tmp_path / "bad.jsonl", n=8, fields=("prompt", "answer"))
    line = _one_line_error(runs.run(tmp_path / "run", f"--config.data.train={data}"))
    assert f"{data}:1" in line and "'completion'" in line


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, data):
    # A huge learning rate makes the first update overflow; the next loss is not finite.
    result = runs.run(tmp_path, f"--config.data.train={data}", "--config.optim.learning_rate=1e30",
                      "--config.optim.warmup_steps=0", "--config.optim.grad_clip=0",
                      "--config.checkpoint.every=1")
    line = _one_line_error(result)
    assert result.returncode == 1
    steps = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["kind"] == "train"]
    bad_step = len(steps) + 1  # metrics are written only for finite steps
    assert f"non-finite loss or gradient at step {bad_step}" in line
    saved = runs.checkpoint_steps(tmp_path)
    assert saved and max(saved) == bad_step - 1
    assert f"checkpoint (step {bad_step - 1}) is kept" in line
    assert not (tmp_path / "export").exists()


def test_missing_recipe_file_is_one_line(tmp_path):
    line = _one_line_error(runs.run(tmp_path, config=tmp_path / "no_such_recipe.py"))
    assert "no_such_recipe.py" in line


def test_resuming_with_an_incompatible_config_names_the_changed_keys(tmp_path, data):
    first = runs.run(tmp_path, f"--config.data.train={data}", "--config.train.num_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.train.num_steps=4", "--config.optim.grad_clip=0"))
    assert "checkpoint" in line and "optim.grad_clip" in line and "new --workdir" in line


def test_a_placeholder_string_field_can_be_set_back_to_none(tmp_path, data):
    # The recipe sets model.preset; `None` unsets it (not the string "None", which would be
    # reported as an unknown preset), so the run asks for a model.
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.model.preset=None"))
    assert "model.path" in line and "model.preset" in line and "'None'" not in line


def test_a_placeholder_int_field_can_be_set_back_to_none_last_value_wins(tmp_path, data):
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.data.num_epochs=3", "--config.data.num_epochs=null",
                                    "--config.train.num_steps=0"))
    assert "data.num_epochs must be set" in line  # None reached the run, no parse error


def test_none_and_empty_values_of_placeholder_fields_run(tmp_path, data):
    result = runs.run(tmp_path, f"--config.data.train={data}", "--config.train.num_steps=2",
                      "--config.checkpoint.export_dtype=None", "--config.tokenizer.path=",
                      "--config.eval.grading_workers=none")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "export" / "config.json").exists()


def test_none_is_not_accepted_for_a_field_that_cannot_be_none(tmp_path, data):
    line = _one_line_error(runs.run(tmp_path, f"--config.data.train={data}",
                                    "--config.train.batch_size=None"))
    assert "--config.train.batch_size" in line and "None" in line
