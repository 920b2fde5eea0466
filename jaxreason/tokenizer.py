"""Tokenizers: load a local one, build Llama 3's from its tiktoken file, train a tiny BPE.

Everything is a `transformers.PreTrainedTokenizerFast`, so the sampler, the data pipeline and
exported checkpoints all see one interface (encode, decode, `apply_chat_template`). Nothing is
fetched from a hub: a path is always local.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
from typing import Any, Iterable, Sequence

log = logging.getLogger(__name__)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ChatML-style template for tokenizers trained here (tiny CPU models).
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TINY_SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|im_start|>", "<|im_end|>")


def _is_tiktoken_file(file: pathlib.Path) -> bool:
    """Tiktoken rank files are text lines `<base64> <rank>`; SentencePiece models are binary."""
    try:
        first = file.open("rb").readline(200).split()
        return len(first) == 2 and first[1].isdigit()
    except OSError:
        return False


def _find_tokenizer_config(directory: pathlib.Path) -> pathlib.Path | None:
    for candidate in [directory, *sorted(p for p in directory.iterdir() if p.is_dir())]:
        if (candidate / "tokenizer_config.json").exists():
            return candidate / "tokenizer_config.json"
    return None


# Special tokens that end an assistant turn in chat templates (Llama 3: <|eot_id|> = 128009,
# while its `eos_token` is <|end_of_text|>; Llama 3.1 tool calls: <|eom_id|>; Qwen2:
# <|im_end|>). Chat generation must stop at them, not only at `eos_token_id`.
END_OF_TURN_TOKENS = ("<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end_of_turn|>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The token ids that end a generation: the tokenizer's EOS (one or several) and every
    end-of-turn special token of `END_OF_TURN_TOKENS` the vocabulary holds as a special token
    (so chat generation from Llama 3 stops at <|eot_id|>)."""
    ids: list[int] = []
    eos = getattr(tokenizer, "eos_token_id", None)
    for t in (eos if isinstance(eos, (list, tuple)) else (eos,)):
        if t is not None and int(t) not in ids:
            ids.append(int(t))
    added = getattr(tokenizer, "get_added_vocab", lambda: {})()
    for token in END_OF_TURN_TOKENS:
        if token in added and int(added[token]) not in ids:
            ids.append(int(added[token]))
    return ids


def load_tokenizer(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None):
    """A tokenizer from a local directory.

    Accepts a HF tokenizer directory (`tokenizer.json` / `tokenizer_config.json`, as saved by
    `save_pretrained`), or a directory holding Llama 3's tiktoken `tokenizer.model` with a
    `tokenizer_config.json` beside it or in a subdirectory (special tokens and chat template);
    the converted tokenizer is cached under `cache_dir` (default `~/.cache/jaxreason`).
    """
    import transformers

    directory = pathlib.Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"tokenizer directory {str(directory)!r} does not exist")
    if (directory / "tokenizer.json").exists():
        return transformers.AutoTokenizer.from_pretrained(str(directory))
    model_file = directory / "tokenizer.model"
    if model_file.exists() and _is_tiktoken_file(model_file):
        return _llama3_from_tiktoken(model_file, _find_tokenizer_config(directory), cache_dir)
    if (directory / "tokenizer_config.json").exists() or model_file.exists():
        return transformers.AutoTokenizer.from_pretrained(str(directory))
    raise FileNotFoundError(f"{directory}: no tokenizer.json, tokenizer_config.json or "
                            f"tokenizer.model")


def _llama3_from_tiktoken(model_file: pathlib.Path, config_file: pathlib.Path | None,
                          cache_dir: str | os.PathLike | None):
    """Convert tiktoken BPE ranks into a fast tokenizer with Llama 3's specials and template."""
    import transformers
    from tokenizers import AddedToken, processors
    from transformers.convert_slow_tokenizer import TikTokenConverter

    config = json.loads(config_file.read_text()) if config_file else {}
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
    if config_file:
        digest += hashlib.sha256(config_file.read_bytes()).hexdigest()[:8]
    cache = pathlib.Path(cache_dir or pathlib.Path.home() / ".cache" / "jaxreason") / (
        f"tokenizer-{digest}")
    if (cache / "tokenizer.json").exists():
        return transformers.AutoTokenizer.from_pretrained(str(cache))

    log.info("converting tiktoken ranks %s into a fast tokenizer (cached in %s)", model_file, cache)
    backend = TikTokenConverter(vocab_file=str(model_file), pattern=LLAMA3_PATTERN).converted()
    specials = config.get("added_tokens_decoder") or {
        str(128000 + i): {"content": name} for i, name in enumerate(
            ["<|begin_of_text|>", "<|end_of_text|>"])}
    next_id = backend.get_vocab_size()
    for token_id, info in sorted(specials.items(), key=lambda kv: int(kv[0])):
        if int(token_id) != next_id:
            raise ValueError(f"{config_file}: added token {info['content']!r} has id {token_id}, "
                             f"expected {next_id} (ids must follow the {next_id} BPE ranks)")
        backend.add_special_tokens([AddedToken(info["content"], normalized=False, special=True)])
        next_id += 1
    bos = config.get("bos_token", "<|begin_of_text|>")
    bos_id = backend.token_to_id(bos)
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                      special_tokens=[(bos, bos_id)]),
    ])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos,
        eos_token=config.get("eos_token", "<|end_of_text|>"),
        pad_token=config.get("pad_token", config.get("eos_token", "<|end_of_text|>")),
        model_max_length=config.get("model_max_length", 131072),
        clean_up_tokenization_spaces=False)
    if config.get("chat_template"):
        tokenizer.chat_template = config["chat_template"]
    cache.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(cache))
    return tokenizer


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, *,
                        split_pattern: str | None = "default",
                        special_tokens: Sequence[str] = TINY_SPECIAL_TOKENS,
                        chat_template: str = TINY_CHAT_TEMPLATE):
    """Train a byte-level BPE tokenizer for tiny models (deterministic for the same texts).

    split_pattern: "default" uses GPT-2's pre-tokenizer regex (merges stay within words /
    whitespace runs); None lets merges cross everything (e.g. ".\\n\\n" becomes one token,
    useful to test stop strings). Special tokens get the first ids; pad is the first of them,
    bos the second, eos the third. The chat template wraps turns in <|im_start|> / <|im_end|>.
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                     use_regex=split_pattern is not None)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, min_frequency=2)
    backend.train_from_iterator(list(texts), trainer=trainer)
    pad, bos, eos = special_tokens[:3]
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=pad, bos_token=bos, eos_token=eos,
        clean_up_tokenization_spaces=False)
    tokenizer.chat_template = chat_template
    return tokenizer
