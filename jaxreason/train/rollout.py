"""Rollouts -> training rows for online RL: prompt + completion tokens, masks, advantages.

Pure NumPy on the host, between the sampler and the train step. Every row has the same static
length (`prompt budget + max_new_tokens`) so the train step compiles once per run. A row is one
completion: `input_ids` = the prompt and completion tokens, `targets` = the same shifted left,
`loss_mask` = 1 where the target is a completion token, `advantages` = the completion's
advantage. Rows whose group was dropped (dynamic sampling filler) or whose completion was cut
off by the length budget (when masked) keep their tokens but get `loss_mask` 0, so they carry no
gradient and do not count in any normaliser.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def rollout_rows(prompts: Sequence[Sequence[int]], completions: np.ndarray,
                 completion_lengths: np.ndarray, prompt_index: np.ndarray,
                 advantages: np.ndarray, *, length: int, pad_token_id: int,
                 trainable: np.ndarray | None = None,
                 sampler_logprobs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Training rows of a batch of completions.

    prompts: token ids of each prompt. completions: `[rows, max_new_tokens]` sampled tokens;
    completion_lengths: `[rows]`; prompt_index: `[rows]`, the prompt of each row; advantages:
    `[rows]`; trainable: `[rows]` bool (False: loss_mask all 0). sampler_logprobs: `[rows,
    max_new_tokens]`, the sampler's log-probs of the completion tokens, placed at the loss
    positions (to log the sampler-vs-trainer gap).

    Returns `[rows, length]` arrays input_ids, targets, positions, segment_ids, loss_mask,
    sampler_logprobs, and `advantages [rows]` float32.
    """
    rows = completions.shape[0]
    trainable = np.ones(rows, bool) if trainable is None else np.asarray(trainable, bool)
    out = {
        "input_ids": np.full((rows, length), pad_token_id, np.int32),
        "targets": np.full((rows, length), pad_token_id, np.int32),
        "positions": np.zeros((rows, length), np.int32),
        "segment_ids": np.zeros((rows, length), np.int32),
        "loss_mask": np.zeros((rows, length), np.int32),
        "sampler_logprobs": np.zeros((rows, length), np.float32),
        "advantages": np.asarray(advantages, np.float32).reshape(rows),
    }
    for r in range(rows):
        prompt = list(prompts[int(prompt_index[r])])
        n = int(completion_lengths[r])
        tokens = prompt + completions[r, :n].tolist()
        if len(tokens) - 1 > length:
            raise ValueError(f"row {r}: prompt ({len(prompt)}) + completion ({n}) tokens exceed "
                             f"the row length {length} + 1; raise the prompt budget")
        k = len(tokens) - 1  # positions that predict a next token
        out["input_ids"][r, :k] = tokens[:-1]
        out["targets"][r, :k] = tokens[1:]
        out["positions"][r, :k] = np.arange(k)
        out["segment_ids"][r, :k] = 1
        if trainable[r] and n > 0:
            out["loss_mask"][r, len(prompt) - 1:k] = 1
        if sampler_logprobs is not None and n > 0:
            out["sampler_logprobs"][r, len(prompt) - 1:k] = sampler_logprobs[r, :n]
    return out
