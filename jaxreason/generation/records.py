"""`Generations`: what one sampling call produced, before and after grading.

Rows are prompt-major: row r is sample `sample_index[r]` of prompt `prompt_index[r]`. Token
arrays are padded to the call's `max_new_tokens` (pad after `lengths`); `texts` are decoded
once, by `jaxreason.sampling.completion_text` (special tokens skipped, cut at the stop string
that ended the sample as `SamplingParams.include_stop_str_in_output` says), so the text that
earns a reward in training is the text evaluation grades.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from jaxreason.sampling.params import FINISH_LENGTH, FINISH_REASONS


@dataclasses.dataclass
class Generations:
    """prompt_token_ids: per prompt, its token ids. prompt_index / sample_index: `[rows]`.
    tokens / logprobs / raw_logprobs: `[rows, max_new_tokens]` (logprobs under the sampling
    distribution, raw_logprobs under the untempered model). lengths / finish_codes /
    stop_index: `[rows]`. texts: `rows` strings. After `grade`: records (per prompt), grades
    (per row, `tasks.Grade` or None with a custom reward), rewards `[rows]` float64 and correct
    `[rows]` bool (None with a custom reward function)."""

    prompt_token_ids: list[list[int]]
    prompt_index: np.ndarray
    sample_index: np.ndarray
    tokens: np.ndarray
    logprobs: np.ndarray
    raw_logprobs: np.ndarray
    lengths: np.ndarray
    finish_codes: np.ndarray
    stop_index: np.ndarray
    texts: list[str]
    records: list[Any] | None = None
    grades: list[Any] | None = None
    rewards: np.ndarray | None = None
    correct: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_prompts(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def samples_per_prompt(self) -> int:
        return self.num_rows // max(self.num_prompts, 1)

    @property
    def mask(self) -> np.ndarray:
        """`[rows, max_new_tokens]` bool, true on generated tokens."""
        return np.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]

    @property
    def truncated(self) -> np.ndarray:
        """`[rows]` bool: cut off by the token budget (no EOS, stop token or stop string)."""
        return self.finish_codes == FINISH_LENGTH

    @property
    def finish_reasons(self) -> list[str]:
        return [FINISH_REASONS[int(c)] for c in self.finish_codes]

    def token_ids(self, row: int) -> list[int]:
        """The generated tokens of one row (without padding)."""
        return self.tokens[row, : int(self.lengths[row])].tolist()

    def row_records(self) -> list[Any]:
        """The (graded) record of each row's prompt."""
        if self.records is None:
            raise ValueError("these generations were not graded against records")
        return [self.records[int(p)] for p in self.prompt_index]

    def by_prompt(self, values: np.ndarray) -> np.ndarray:
        """`[rows, ...]` -> `[prompts, samples_per_prompt, ...]` (rows are prompt-major)."""
        values = np.asarray(values)
        return values.reshape(self.num_prompts, self.samples_per_prompt, *values.shape[1:])

    def select(self, rows: Sequence[int] | np.ndarray) -> "Generations":
        """The generations of some rows (prompt lists and records are kept whole)."""
        rows = np.asarray(rows, np.int64)
        pick = (lambda a: None if a is None else np.asarray(a)[rows])
        return dataclasses.replace(
            self, prompt_index=self.prompt_index[rows], sample_index=self.sample_index[rows],
            tokens=self.tokens[rows], logprobs=self.logprobs[rows],
            raw_logprobs=self.raw_logprobs[rows], lengths=self.lengths[rows],
            finish_codes=self.finish_codes[rows], stop_index=self.stop_index[rows],
            texts=[self.texts[int(r)] for r in rows],
            grades=None if self.grades is None else [self.grades[int(r)] for r in rows],
            rewards=pick(self.rewards), correct=pick(self.correct))
