"""Record readers (jsonl, json, parquet, `datasets` directories) and Grain input pipelines.

Readers return the datasets' own records (dicts with the file's fields) so that tasks grade
exactly what the file says. Errors name what to fix: a malformed line names the file and line
number, a missing field names the field and where. Importing this module is cheap: pyarrow,
`datasets` and Grain load inside the functions that need them.

Pipelines (`make_map_dataset`, `make_iter_dataset`) are deterministic: source -> global
shuffle by seed (re-seeded each epoch) -> epochs -> the same number of elements on every
process -> this process's shard (`shard_index`, `shard_count` are arguments: the caller passes
`jax.process_index()` / `jax.process_count()`; this layer does not import JAX). The iterator of
an `IterDataset` has Grain's `get_state()` / `set_state()`, which the checkpointer saves to
resume a run exactly where it stopped.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import grain

Record = dict[str, Any]


class DataFormatError(ValueError):
    """A data file that cannot be read as records (the message names file, line and field)."""


def _check_fields(record: Any, required_fields: Iterable[str], where: str) -> None:
    if not isinstance(record, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for field in required_fields:
        if field not in record:
            raise DataFormatError(
                f"{where}: record has no field {field!r} (fields present: {sorted(record)})"
            )


def parse_jsonl_line(line: str | bytes, path: str, line_number: int, required_fields: Iterable[str] = ()) -> Record:
    """One jsonl line as a record; errors name `path:line_number`."""
    where = f"{path}:{line_number}"
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{where}: malformed JSON: {error}") from None
    _check_fields(record, required_fields, where)
    return record


def read_jsonl(path: str | os.PathLike[str], *, required_fields: Iterable[str] = ()) -> list[Record]:
    """All records of a jsonl file (one JSON object per line; blank lines are skipped)."""
    path = os.fspath(path)
    required_fields = tuple(required_fields)
    records = []
    with open(path, "rb") as file:
        for line_number, line in enumerate(file, start=1):
            if line.strip():
                records.append(parse_jsonl_line(line, path, line_number, required_fields))
    return records


def read_json(path: str | os.PathLike[str], *, required_fields: Iterable[str] = ()) -> list[Record]:
    """Records of a JSON file holding a list of objects (or `{"data": [...]}`)."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        try:
            content = json.load(file)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None
    if isinstance(content, dict) and isinstance(content.get("data"), list):
        content = content["data"]
    if not isinstance(content, list):
        raise DataFormatError(f"{path}: expected a JSON list of records, got {type(content).__name__}")
    required_fields = tuple(required_fields)
    for index, record in enumerate(content):
        _check_fields(record, required_fields, f"{path}: record {index}")
    return content


def read_parquet(path: str | os.PathLike[str], *, required_fields: Iterable[str] = ()) -> list[Record]:
    """Rows of a parquet file as records (nested lists and structs become lists and dicts)."""
    import pyarrow.parquet as parquet

    path = os.fspath(path)
    try:
        table = parquet.read_table(path)
    except Exception as error:  # pyarrow raises several types for corrupt files
        if isinstance(error, FileNotFoundError):
            raise
        raise DataFormatError(f"{path}: cannot read as parquet: {error}") from None
    _check_columns(table.schema.names, required_fields, path)
    for field in required_fields:
        column = table.column(field)
        if column.null_count:
            row = next(i for i, value in enumerate(column.to_pylist()) if value is None)
            raise DataFormatError(f"{path}: row {row}: field {field!r} is null")
    return table.to_pylist()


def _check_columns(columns: Sequence[str], required_fields: Iterable[str], where: str) -> None:
    for field in required_fields:
        if field not in columns:
            raise DataFormatError(f"{where}: no field {field!r} (fields present: {sorted(columns)})")


def _load_datasets_dir(path: str, split: str | None) -> Any:
    import datasets

    loaded = datasets.load_from_disk(path)
    if isinstance(loaded, datasets.DatasetDict):
        if split is None:
            if len(loaded) != 1:
                raise DataFormatError(f"{path}: holds splits {sorted(loaded)}; pass split=")
            split = next(iter(loaded))
        if split not in loaded:
            raise DataFormatError(f"{path}: no split {split!r} (splits: {sorted(loaded)})")
        loaded = loaded[split]
    return loaded


def read_datasets_dir(
    path: str | os.PathLike[str], *, split: str | None = None, required_fields: Iterable[str] = ()
) -> list[Record]:
    """Records of a directory written by `datasets.Dataset(Dict).save_to_disk`."""
    path = os.fspath(path)
    dataset = _load_datasets_dir(path, split)
    _check_columns(dataset.column_names, required_fields, path)
    return dataset.to_list()


def read_records(
    path: str | os.PathLike[str], *, split: str | None = None, required_fields: Iterable[str] = ()
) -> list[Record]:
    """Records of a `.jsonl`, `.json`, `.parquet` file or a `datasets` directory."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return read_datasets_dir(path, split=split, required_fields=required_fields)
    if path.endswith(".jsonl"):
        return read_jsonl(path, required_fields=required_fields)
    if path.endswith(".json"):
        return read_json(path, required_fields=required_fields)
    if path.endswith(".parquet"):
        return read_parquet(path, required_fields=required_fields)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    raise DataFormatError(f"{path}: unknown format (expected .jsonl, .json, .parquet or a datasets directory)")


class JsonlSource:
    """Random access to a jsonl file's records without holding them all in memory.

    Indexes line offsets once; a record is parsed when read, so a malformed line raises (with
    file and line number) when it is reached. Usable as a Grain data source (it has `__len__`
    and `__getitem__`, and pickles by path).
    """

    def __init__(self, path: str | os.PathLike[str], *, required_fields: Iterable[str] = ()) -> None:
        self.path = os.fspath(path)
        self.required_fields = tuple(required_fields)
        self._offsets: list[int] = []
        self._line_numbers: list[int] = []
        offset = 0
        with open(self.path, "rb") as file:
            for line_number, line in enumerate(file, start=1):
                if line.strip():
                    self._offsets.append(offset)
                    self._line_numbers.append(line_number)
                offset += len(line)

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index: int) -> Record:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.path}: index {index} out of range for {len(self)} records")
        with open(self.path, "rb") as file:
            file.seek(self._offsets[index])
            line = file.readline()
        return parse_jsonl_line(line, self.path, self._line_numbers[index], self.required_fields)

    def __repr__(self) -> str:
        return f"JsonlSource({self.path!r}, {len(self)} records)"


def _source(data: Any, split: str | None, required_fields: Iterable[str]) -> Any:
    """A random-access source: records as given, a lazy jsonl, a datasets dir, or all rows."""
    if not isinstance(data, (str, os.PathLike)):
        return data
    path = os.fspath(data)
    if path.endswith(".jsonl") and not os.path.isdir(path):
        return JsonlSource(path, required_fields=required_fields)
    if os.path.isdir(path):
        dataset = _load_datasets_dir(path, split)
        _check_columns(dataset.column_names, required_fields, path)
        return dataset
    return read_records(path, split=split, required_fields=required_fields)


def make_map_dataset(
    data: str | os.PathLike[str] | Sequence[Record],
    *,
    seed: int | None = 0,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    shard_index: int = 0,
    shard_count: int = 1,
    split: str | None = None,
    required_fields: Iterable[str] = (),
) -> "grain.MapDataset":
    """A deterministic, sharded Grain `MapDataset` of records.

    data: a path (jsonl / json / parquet / datasets dir) or a sequence of records.
    seed: shuffle seed (0 <= seed < 2**32); each epoch is shuffled differently from it.
    shuffle: False keeps file order.
    num_epochs: passes over the data; None repeats forever.
    shard_index, shard_count: this process's shard (multi-host: `jax.process_index()`,
      `jax.process_count()`). Element k of shard i is global element i + k * shard_count;
      with finite epochs the tail that cannot be split evenly is dropped so that every
      process takes the same number of steps.
    """
    import grain

    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be in [0, shard_count), got {shard_index} of {shard_count}")
    if num_epochs is not None and num_epochs < 1:
        raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
    dataset = grain.MapDataset.source(_source(data, split, required_fields))
    if len(dataset) == 0:
        raise DataFormatError(f"{data if isinstance(data, (str, os.PathLike)) else 'records'}: no records")
    if shuffle:
        if seed is None:
            raise ValueError("shuffle=True needs a seed")
        dataset = dataset.shuffle(seed=seed)
    if num_epochs is None:
        dataset = dataset.repeat()
    elif num_epochs > 1:
        dataset = dataset.repeat(num_epochs)
    if shard_count > 1:
        if num_epochs is not None:
            dataset = dataset[: len(dataset) - len(dataset) % shard_count]
        dataset = dataset[shard_index::shard_count]
    return dataset


def make_iter_dataset(
    data: str | os.PathLike[str] | Sequence[Record],
    **options: Any,
) -> "grain.IterDataset":
    """`make_map_dataset(data, **options).to_iter_dataset()`: iterate with `iter(dataset)`.

    The iterator supports `get_state()` / `set_state(state)`: a state taken after k elements
    and set on a fresh iterator continues with element k + 1.
    """
    return make_map_dataset(data, **options).to_iter_dataset()
