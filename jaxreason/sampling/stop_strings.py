"""Stop strings checked inside the jitted decode loop.

A byte-level BPE vocabulary merges text freely: "\\n\\n" can arrive inside ".\\n\\n" or
"\\n\\n\\n", or split as "\\n" + "\\n" across two tokens. So each stop string becomes a KMP
automaton over *bytes* (state = length of the longest prefix of the string that ends the text
so far), lifted to whole tokens: `table[state, token]` is the state after appending that token's
bytes, or `len(string)` if the string completes anywhere inside the token. The loop then needs
one gather per step. Tables are built once per (tokenizer, stop string) with numpy, vectorized
over the vocabulary.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Sequence

import numpy as np


@functools.lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte -> printable-unicode map used by byte-level BPE vocabularies."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars)}


def _decoder_types(tokenizer: Any) -> set[str]:
    """Types of the `tokenizers` decoder pipeline of a fast tokenizer (empty if unknown)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return set()
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    types = {decoder.get("type")}
    for sub in decoder.get("decoders") or []:
        types.add(sub.get("type"))
    return {t for t in types if t}


def token_bytes(tokenizer: Any, vocab_size: int) -> list[bytes]:
    """The bytes each token id contributes to decoded text; b"" for special tokens and for ids
    the tokenizer does not have (models often pad their vocabulary)."""
    added = {i: tok for i, tok in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    special = set(getattr(tokenizer, "all_special_ids", []))
    n = min(len(tokenizer), vocab_size)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    types = _decoder_types(tokenizer)
    byte_level = "ByteLevel" in types
    sentencepiece = bool(types & {"ByteFallback", "Metaspace", "Replace"})
    inverse = _byte_level_decoder()
    out: list[bytes] = []
    for i, piece in enumerate(pieces):
        if i in special or (i in added and getattr(added[i], "special", False)) or piece is None:
            out.append(b"")
        elif i in added:
            out.append(added[i].content.encode())
        elif byte_level and all(c in inverse for c in piece):
            out.append(bytes(inverse[c] for c in piece))
        elif sentencepiece and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out.append(bytes([int(piece[3:5], 16)]))
        elif sentencepiece:
            out.append(piece.replace("\u2581", " ").encode())
        else:
            out.append(tokenizer.decode([i], skip_special_tokens=True,
                                        clean_up_tokenization_spaces=False).encode())
    out.extend(b"" for _ in range(vocab_size - n))
    return out


def kmp_automaton(pattern: bytes) -> np.ndarray:
    """`[len+1, 256]` int32: next state after reading a byte; state = matched prefix length."""
    m = len(pattern)
    dfa = np.zeros((m + 1, 256), np.int32)
    dfa[0, pattern[0]] = 1
    fallback = 0
    for state in range(1, m + 1):
        dfa[state] = dfa[fallback]
        if state < m:
            dfa[state, pattern[state]] = state + 1
            fallback = dfa[fallback, pattern[state]]
    return dfa


def token_transition_table(pattern: bytes, vocab_bytes: Sequence[bytes]) -> np.ndarray:
    """`[len+1, vocab]` int32: state after appending each token, `len` once the pattern has
    completed anywhere inside it (the final state is absorbing)."""
    m = len(pattern)
    dfa = kmp_automaton(pattern)
    vocab = len(vocab_bytes)
    lengths = np.array([len(b) for b in vocab_bytes], np.int64)
    table = np.tile(np.arange(m + 1, dtype=np.int32)[:, None], (1, vocab))
    # Only tokens holding some byte of the pattern can move the automaton anywhere but 0.
    alphabet = set(pattern)
    relevant = np.array([i for i, b in enumerate(vocab_bytes) if b and not alphabet.isdisjoint(b)],
                        np.int64)
    table[:m, lengths > 0] = 0
    if relevant.size:
        width = int(lengths[relevant].max())
        data = np.zeros((relevant.size, width), np.int64)
        for row, i in enumerate(relevant):
            data[row, :lengths[i]] = np.frombuffer(vocab_bytes[i], np.uint8)
        state = np.tile(np.arange(m, dtype=np.int32)[:, None], (1, relevant.size))
        for col in range(width):
            live = (col < lengths[relevant])[None, :] & (state < m)
            state = np.where(live, dfa[state, data[None, :, col]], state)
        table[:m, relevant] = state
    return table


class StopStringTables:
    """Transition tables of several stop strings, padded to one array for the jitted loop.

    tables: `[num_strings, max_len + 1, vocab]` int32; lengths: `[num_strings]` int32 (the
    accepting state of each string; padding strings get an unreachable length).
    """

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self._tokenizer = tokenizer
        self._vocab_bytes: list[bytes] | None = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def vocab_bytes(self) -> list[bytes]:
        if self._vocab_bytes is None:
            if self._tokenizer is None:
                raise ValueError("stop strings need a tokenizer (Sampler(model, tokenizer))")
            self._vocab_bytes = token_bytes(self._tokenizer, self.vocab_size)
        return self._vocab_bytes

    def table(self, stop: str) -> np.ndarray:
        if stop not in self._cache:
            self._cache[stop] = token_transition_table(stop.encode(), self.vocab_bytes)
        return self._cache[stop]

    def build(self, stops: Sequence[str], num_slots: int, num_states: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """Padded tables `[num_slots, num_states, vocab]` and accepting states `[num_slots]`."""
        tables = np.zeros((num_slots, num_states, self.vocab_size), np.int32)
        lengths = np.full((num_slots,), num_states + 1, np.int32)  # never reached
        for s, stop in enumerate(stops):
            t = self.table(stop)
            tables[s, :t.shape[0]] = t
            tables[s, t.shape[0]:] = t.shape[0] - 1
            lengths[s] = t.shape[0] - 1
        return tables, lengths


def cut_at_stop(text: str, stops: Sequence[str], include: bool) -> tuple[str, str | None]:
    """`text` cut at the earliest-ending occurrence of any stop string, and that string."""
    best: tuple[int, int, str] | None = None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (best is None or at + len(stop) < best[0] + len(best[2])):
            best = (at, at + len(stop), stop)
    if best is None:
        return text, None
    return text[: best[1] if include else best[0]], best[2]
