"""A toy task with one right answer per prompt, for GRPO learning tests: the prompt is a letter,
the answer is another letter (a fixed permutation); chance level is 1 / vocabulary size."""

from __future__ import annotations

import json
import pathlib

LETTERS = "abcdefgh"
ANSWER = {p: LETTERS[(3 * i + 1) % len(LETTERS)] for i, p in enumerate(LETTERS)}


def reward(records, completions):
    """1.0 when the completion's first word is the prompt's answer, else 0.0."""
    out = []
    for record, completion in zip(records, completions):
        words = completion.split()
        out.append(1.0 if words and words[0] == record["answer"] else 0.0)
    return out


def write_data(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(prompts jsonl, tokenizer dir): a word-level tokenizer over the letters."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    data = directory / "letters.jsonl"
    with open(data, "w") as f:
        for p in LETTERS:
            f.write(json.dumps({"prompt": p, "answer": ANSWER[p]}) + "\n")
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, **{c: i + 3 for i, c in enumerate(LETTERS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>",
                                        bos_token="<bos>", eos_token="<eos>")
    tokenizer_dir = directory / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    return data, tokenizer_dir
