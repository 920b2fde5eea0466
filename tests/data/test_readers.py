"""Record readers and Grain pipelines: formats, error messages, determinism, sharding, resume."""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path

import pytest

from jaxreason.data.readers import (
    DataFormatError,
    JsonlSource,
    make_iter_dataset,
    make_map_dataset,
    read_json,
    read_jsonl,
    read_parquet,
    read_records,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RECORDS = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(23)]


@pytest.fixture
def jsonl(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


def test_jsonl_reads_records_and_skips_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"x": 1}\n\n{"x": 2}\n')
    assert read_jsonl(path) == [{"x": 1}, {"x": 2}]


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"x": 1}\n{"x": 2}\n{"x": 3,,}\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:3: malformed JSON"):
        read_jsonl(path)
    path.write_text('{"x": 1}\n[1, 2]\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2: expected a JSON object, got list"):
        read_jsonl(path)


def test_missing_field_names_the_field_and_line(jsonl):
    lines = jsonl.read_text().splitlines()
    lines[4] = json.dumps({"question": "q"})
    jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train\.jsonl:5: record has no field 'answer'"):
        read_records(jsonl, required_fields=("question", "answer"))


def test_json_file_of_records(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(RECORDS[:3]))
    assert read_json(path) == RECORDS[:3]
    path.write_text(json.dumps({"data": RECORDS[:2]}))
    assert read_records(path) == RECORDS[:2]
    path.write_text('[{"x": 1},\n {"x": 2,}]')
    with pytest.raises(DataFormatError, match=r"a\.json:2:\d+: malformed JSON"):
        read_json(path)
    path.write_text(json.dumps([{"x": 1}, {"y": 2}]))
    with pytest.raises(DataFormatError, match=r"a\.json: record 1: record has no field 'x'"):
        read_json(path, required_fields=["x"])


def test_parquet_rows_and_field_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([{"target": 24, "nums": [1, 2, 3, 4]}, {"target": None, "nums": [5]}]), path)
    assert read_parquet(path)[0] == {"target": 24, "nums": [1, 2, 3, 4]}
    with pytest.raises(DataFormatError, match=r"c\.parquet: row 1: field 'target' is null"):
        read_records(path, required_fields=("target",))
    with pytest.raises(DataFormatError, match=r"c\.parquet: no field 'prompt'"):
        read_records(path, required_fields=("prompt",))
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(DataFormatError, match="cannot read as parquet"):
        read_parquet(tmp_path / "junk.parquet")


def test_datasets_directory_with_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    dataset_dict = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(RECORDS[:5]), "test": datasets.Dataset.from_list(RECORDS[5:7])}
    )
    dataset_dict.save_to_disk(str(tmp_path / "ds"))
    assert read_records(tmp_path / "ds", split="test") == RECORDS[5:7]
    with pytest.raises(DataFormatError, match=r"holds splits \['test', 'train'\]; pass split="):
        read_records(tmp_path / "ds")
    with pytest.raises(DataFormatError, match="no field 'solution'"):
        read_records(tmp_path / "ds", split="train", required_fields=["solution"])
    grain_records = list(make_map_dataset(tmp_path / "ds", split="train", shuffle=False))
    assert grain_records == RECORDS[:5]


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(DataFormatError, match="unknown format"):
        read_records(tmp_path / "a.csv")
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "missing.jsonl")


def test_jsonl_source_is_lazy_random_access_and_picklable(tmp_path):
    path = tmp_path / "lazy.jsonl"
    path.write_text('{"x": 0}\n\n{"x": 1}\nnot json\n{"x": 3}\n')
    source = JsonlSource(path)
    assert len(source) == 4
    assert source[1] == {"x": 1} and source[-1] == {"x": 3}
    with pytest.raises(DataFormatError, match=r"lazy\.jsonl:4: malformed JSON"):
        source[2]
    with pytest.raises(IndexError):
        source[4]
    assert pickle.loads(pickle.dumps(source))[0] == {"x": 0}


def test_shuffle_is_a_deterministic_permutation(jsonl):
    first = list(make_map_dataset(jsonl, seed=1))
    assert first == list(make_map_dataset(jsonl, seed=1))
    assert first != list(make_map_dataset(jsonl, seed=2))
    assert sorted(first, key=lambda r: r["question"]) == sorted(RECORDS, key=lambda r: r["question"])
    assert list(make_map_dataset(jsonl, shuffle=False)) == RECORDS


def test_epochs_are_reshuffled_and_each_holds_every_record(jsonl):
    two_epochs = list(make_map_dataset(jsonl, seed=3, num_epochs=2))
    first, second = two_epochs[:23], two_epochs[23:]
    assert first != second
    assert sorted(r["question"] for r in first) == sorted(r["question"] for r in second)
    endless = make_map_dataset(jsonl, seed=3, num_epochs=None)
    assert [endless[i] for i in range(46)] == two_epochs


def test_shards_are_disjoint_equal_and_cover_the_global_order(jsonl):
    global_order = list(make_map_dataset(jsonl, seed=5, num_epochs=2))
    shards = [list(make_map_dataset(jsonl, seed=5, num_epochs=2, shard_index=i, shard_count=4)) for i in range(4)]
    assert {len(shard) for shard in shards} == {46 // 4}
    interleaved = [shard[k] for k in range(46 // 4) for shard in shards]
    assert interleaved == global_order[: 4 * (46 // 4)]
    with pytest.raises(ValueError, match="shard_index"):
        make_map_dataset(jsonl, shard_index=4, shard_count=4)


def test_iterator_state_resumes_exactly(jsonl):
    options = dict(seed=11, num_epochs=None, shard_index=1, shard_count=2)
    iterator = iter(make_iter_dataset(jsonl, **options))
    for _ in range(17):
        next(iterator)
    state = iterator.get_state()
    json.dumps(state)  # checkpointable as plain data
    expected = list(itertools.islice(iterator, 40))
    resumed = iter(make_iter_dataset(jsonl, **options))
    resumed.set_state(state)
    assert list(itertools.islice(resumed, 40)) == expected


@pytest.mark.parametrize(
    "relative, fields, rows",
    [
        ("gsm8k/train.jsonl", ("question", "answer"), 7273),
        ("math/dev.jsonl", ("problem", "solution", "level", "type", "unique_id"), 200),
        ("arc/ARC-Challenge-Dev.jsonl", ("id", "question", "answerKey"), 299),
        ("countdown/train.parquet", ("target", "nums", "prompt"), 8001),
    ],
)
def test_real_data_files_read_with_their_fields(relative, fields, rows):
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not present")
    assert len(read_records(path, required_fields=fields)) == rows
    assert len(make_map_dataset(path, seed=0)) == rows
