"""Stop strings end generation exactly at their first occurrence, whatever the tokenization."""

import pytest
from hypothesis import given, settings, strategies as st

from jaxreason.sampling import Sampler, SamplingParams
from jaxreason.sampling.stop_strings import cut_at_stop, token_bytes, token_transition_table
from sampling_helpers import markov_model, spread_model, tiny_tokenizer


def first_stop(pieces: list[bytes], stop: bytes) -> int | None:
    """Index of the token at whose end the text first contains `stop` (brute force)."""
    text = b""
    for i, piece in enumerate(pieces):
        text += piece
        if stop in text:
            return i
    return None


@settings(max_examples=200, deadline=None)
@given(vocab=st.lists(st.binary(min_size=0, max_size=4).map(lambda b: b.replace(b"\0", b"a")),
                      min_size=1, max_size=12),
       stop=st.sampled_from([b"\n\n", b"ab", b"aab", b"abab", b"\n", b"a\nb"]),
       seq=st.lists(st.integers(0, 11), max_size=30))
def test_token_automaton_finds_first_occurrence_like_brute_force(vocab, stop, seq):
    vocab = [v.replace(b"c", b"\n") for v in vocab]
    seq = [i % len(vocab) for i in seq]
    table = token_transition_table(stop, vocab)
    state, found = 0, None
    for i, token in enumerate(seq):
        state = table[state, token]
        if state == len(stop):
            found = i
            break
    assert found == first_stop([vocab[t] for t in seq], stop)


def test_trained_tokenizer_merges_blank_lines_with_neighbours():
    pieces = token_bytes(tiny_tokenizer(), len(tiny_tokenizer()))
    merged = [p for p in pieces if b"\n\n" in p and p != b"\n\n"]
    assert {b".\n\n", b"\n\n\n", b"\n\nSo"} <= set(merged)
    assert b"\n" in pieces  # so "\n\n" can also arrive split over two tokens


def test_cut_at_stop_keeps_or_drops_the_earliest_ending_stop_string():
    assert cut_at_stop("a.\n\nb\n\n", ["\n\n"], True) == ("a.\n\n", "\n\n")
    assert cut_at_stop("a.\n\nb\n\n", ["\n\n"], False) == ("a.", "\n\n")
    assert cut_at_stop("xyz abc", ["abc", "yz"], True) == ("xyz", "yz")
    assert cut_at_stop("no stop", ["\n\n"], True) == ("no stop", None)


# Greedy chains of a `markov_model`: prompt's last token -> the tokens it generates.
CHAINS = {
    "yes": [" the", ".\n\n", " try"],  # "\n\n" inside a merged token
    "wait": [":\n", "\n-", " answer"],  # "\n\n" across two tokens
    "So": [" check", "\n\nSo", " check"],  # the stopping token runs past the stop string
    "Then": [" wait", "Then"] * 8,  # never stops
    " answer": [" try", " again", ".\n", " the", ".\n\n"],  # "try again." spans 3 tokens
}


@pytest.fixture(scope="module")
def chain_sampler():
    tok = tiny_tokenizer()
    ids = {piece: i for i, piece in enumerate(token_bytes(tok, len(tok))) if piece}
    successor = {}
    for start, pieces in CHAINS.items():
        path = [ids[start.encode()]] + [ids[p.encode()] for p in pieces]
        for a, b in zip(path, path[1:]):
            assert successor.setdefault(a, b) == b, "chains must agree on every successor"
    prompts = [[tok.bos_token_id, ids[start.encode()]] for start in CHAINS]
    return Sampler(markov_model(len(tok), successor), tok), prompts


@pytest.mark.parametrize("stops,expected", [
    (["\n\n"], {"yes": (" the.\n\n", 2), "wait": (":\n\n", 2),
                 "So": (" check\n\n", 2), "Then": (None, 16),
                 " answer": (" try again.\n the.\n\n", 5)}),
    (["\n\n", "try again."], {"yes": (" the.\n\n", 2), "wait": (":\n\n", 2),
                               "So": (" check\n\n", 2), "Then": (None, 16),
                               " answer": (" try again.", 3)}),
], ids=["blank_line", "blank_line_and_three_token_string"])
@pytest.mark.parametrize("include", [True, False], ids=["with_stop", "without_stop"])
def test_greedy_generation_stops_exactly_at_first_stop_string(chain_sampler, stops, expected,
                                                              include):
    sampler, prompts = chain_sampler
    results = sampler.generate(prompts, SamplingParams(
        temperature=0, max_new_tokens=16, stop=stops, ignore_eos=True,
        include_stop_str_in_output=include))
    for r, start in zip(results, CHAINS):
        text, length = expected[start]
        assert r.length == length, start
        generated = "".join((CHAINS[start] * 8)[:length])
        assert sampler.tokenizer.decode(r.token_ids) == generated  # the stopping token is kept
        if text is None:
            assert (r.finish_reason, r.stop_reason, r.text) == ("length", None, generated)
        else:
            stop = next(s for s in stops if text.endswith(s))
            assert (r.finish_reason, r.stop_reason) == ("stop", stop), start
            assert r.text == (text if include else text[:-len(stop)]), start


@pytest.fixture(scope="module")
def sampler():
    tok = tiny_tokenizer()
    # near-uniform next-token distributions: many kinds of token boundaries show up
    return Sampler(spread_model("llama-tiny", len(tok), seed=2, logit_scale=1.0), tok)


def test_sampled_generations_stop_at_first_stop_string_occurrence(sampler):
    tok = sampler.tokenizer
    pieces = token_bytes(tok, len(tok))
    stops = ("\n\n", " the")
    params = SamplingParams(temperature=1.0, n=128, max_new_tokens=16, seed=4, stop=stops,
                            ignore_eos=True)
    results = sampler.generate([[tok.bos_token_id, 40, 41]], params)
    for r in results:
        hits = [first_stop([pieces[t] for t in r.token_ids], s.encode()) for s in stops]
        hits = [h for h in hits if h is not None]
        if r.finish_reason == "stop":
            assert min(hits) == len(r.token_ids) - 1  # the last token completes a stop string
            full = tok.decode(r.token_ids, skip_special_tokens=True)
            assert r.text == full[:full.index(r.stop_reason) + len(r.stop_reason)]
            assert not any(s in r.text[:-1] for s in stops)
        else:
            assert (r.finish_reason, len(r.token_ids), hits) == ("length", 16, [])
    assert {r.stop_reason for r in results} == {None, *stops}


def test_prompts_may_be_text_chat_messages_or_token_ids(sampler):
    tok = sampler.tokenizer
    chat = [{"role": "user", "content": "check the answer"}]
    rendered = "<|im_start|>user\ncheck the answer<|im_end|>\n<|im_start|>assistant\n"
    expected = [tok("so we add")["input_ids"], tok(rendered, add_special_tokens=False)["input_ids"],
                [5, 6, 7]]
    assert sampler.encode(["so we add", chat, [5, 6, 7]]) == expected
    assert tok.convert_ids_to_tokens(expected[1][:1]) == ["<|im_start|>"]
    results = sampler.generate(["so we add", chat, [5, 6, 7]],
                               SamplingParams(temperature=0, max_new_tokens=4, ignore_eos=True))
    assert [r.prompt_token_ids for r in results] == expected
    assert all(r.text == tok.decode(r.token_ids, skip_special_tokens=True) for r in results)
