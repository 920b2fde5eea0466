"""What a caller asks of the sampler (`SamplingParams`) and what it gets back.

Two result forms serve two kinds of callers: `SampleResult` (one per sample, with text) for
evaluation and people, and `GeneratedBatch` (padded numpy arrays, no text) for MCTS and the RL
trainers, which need tokens, masks and log-probs and never the text round trip.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

# Finish codes inside the jitted loop; `FINISH_REASONS[code]` is the public name.
FINISH_LENGTH, FINISH_STOP_TOKEN, FINISH_STOP_STRING = 0, 1, 2
FINISH_REASONS = ("length", "stop", "stop")


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to sample.

    temperature: 0 means greedy (argmax); otherwise logits are divided by it.
    top_k: keep the k most likely tokens (0 = all); top_p: keep the smallest set of most likely
    tokens whose probability (after temperature and top-k) reaches top_p (1 = all).
    seed: samples are a function of (seed, prompt index, sample index, step), so the same call
    reproduces exactly and a prompt's samples do not depend on the rest of the batch's
    contents. n: samples per prompt. max_new_tokens: generation budget per sample.
    stop_token_ids: tokens that end a sample besides the tokenizer's/model's EOS (which always
    stops unless `ignore_eos`). stop: strings that end a sample; detected inside the jitted loop
    even when a token merges the string with neighbours or the string spans several tokens.
    include_stop_str_in_output: whether `SampleResult.text` ends with the matched stop string
    (True) or stops right before it (False); token ids and log-probs are the same either way.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    n: int = 1
    max_new_tokens: int = 256
    stop_token_ids: Sequence[int] = ()
    stop: Sequence[str] = ()
    ignore_eos: bool = False
    include_stop_str_in_output: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"SamplingParams.top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got "
                             f"{self.max_new_tokens}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"SamplingParams.stop must hold non-empty strings, got {self.stop!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def truncates(self) -> bool:
        """Whether top-k or top-p removes part of the vocabulary."""
        return not self.greedy and (self.top_k > 0 or self.top_p < 1.0)


@dataclasses.dataclass
class GeneratedBatch:
    """Padded arrays of a `generate_ids` call; row r is sample `sample_index[r]` of prompt
    `prompt_index[r]` (rows are prompt-major: prompt 0's n samples first).

    tokens: `[rows, max_new_tokens]` int32, `pad_token_id` after `lengths`; the token that
    ended a sample (EOS, a stop token, or the token completing a stop string) is included.
    logprobs: `[rows, max_new_tokens]` float32, log-prob of each token under the distribution
    it was drawn from (after temperature, top-k, top-p; 0 for greedy, a point mass), 0 after
    `lengths`. raw_logprobs: same, under the untempered, untruncated model distribution (what
    RL losses use). lengths: `[rows]` int32. finish_codes: `[rows]` int32 (FINISH_* codes).
    stop_index: `[rows]` int32, index into `SamplingParams.stop` of the matched string, else -1.
    """

    tokens: np.ndarray
    logprobs: np.ndarray
    raw_logprobs: np.ndarray
    lengths: np.ndarray
    finish_codes: np.ndarray
    stop_index: np.ndarray
    prompt_index: np.ndarray
    sample_index: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """`[rows, max_new_tokens]` bool, true on generated tokens."""
        return np.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]

    @property
    def finish_reasons(self) -> list[str]:
        return [FINISH_REASONS[c] for c in self.finish_codes]


@dataclasses.dataclass
class SampleResult:
    """One sample. `token_ids`/`logprobs`/`raw_logprobs` have one entry per generated token
    (see `GeneratedBatch`); `text` is their decoding without special tokens, cut at the first
    stop string (see `SamplingParams.include_stop_str_in_output`). finish_reason: "stop" (EOS, a
    stop token or a stop string) or "length". stop_reason: the stop string or token id that
    ended the sample, None for "length"."""

    text: str
    token_ids: list[int]
    logprobs: list[float]
    raw_logprobs: list[float]
    finish_reason: str
    stop_reason: str | int | None
    prompt_index: int
    sample_index: int
    prompt_token_ids: list[int]

    @property
    def length(self) -> int:
        return len(self.token_ids)

    @property
    def cumulative_logprob(self) -> float:
        return float(sum(self.logprobs))
