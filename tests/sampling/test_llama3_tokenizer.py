"""The real Llama 3 tokenizer (tiktoken ranks + chat template from ../shared/data) end to end."""

import numpy as np
import pytest

from jaxreason.model import create_model, preset_config
from jaxreason.sampling import Sampler, SamplingParams
from jaxreason.sampling.stop_strings import token_bytes

TEXTS = ["Hello world", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n\n#### 72",
         "  leading spaces, tabs\tand unicode: café, 東京, emoji 🙂\n\n\nend"]
MESSAGES = [{"role": "system", "content": "Think step by step."},
            {"role": "user", "content": "What is 2 + 3?"}]
EOT = 128009


@pytest.fixture(scope="module")
def tokenizer(shared_data, tmp_path_factory):
    from jaxreason.tokenizer import load_tokenizer

    return load_tokenizer(shared_data / "tokenizers" / "llama3",
                          cache_dir=tmp_path_factory.mktemp("tokenizer_cache"))


def test_encode_decode_round_trip_with_known_ids(tokenizer):
    assert tokenizer("Hello world", add_special_tokens=False)["input_ids"] == [9906, 1917]
    assert tokenizer("Hello world")["input_ids"] == [128000, 9906, 1917]
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text


def test_chat_template_renders_llama3_headers(tokenizer):
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                    "Think step by step.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                    "What is 2 + 3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_token_bytes_concatenate_to_the_decoded_text(tokenizer):
    pieces = token_bytes(tokenizer, 128256)
    assert pieces[271] == b"\n\n" and pieces[128000] == b"" and pieces[EOT] == b""
    for text in TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert b"".join(pieces[i] for i in ids).decode() == text


def test_sampler_generates_from_chat_and_text_prompts_with_llama3_vocabulary(tokenizer):
    model = create_model(preset_config("llama-tiny", vocab_size=128256, hidden_size=32,
                                       intermediate_size=64, num_heads=2, num_kv_heads=1),
                         seed=0)
    sampler = Sampler(model, tokenizer)
    chat_ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True)["input_ids"]
    assert sampler.encode([MESSAGES, "Hello world"]) == [chat_ids, [128000, 9906, 1917]]
    params = SamplingParams(temperature=1.0, n=2, max_new_tokens=16, seed=0, stop=["\n\n"],
                            stop_token_ids=[EOT])
    results = sampler.generate([MESSAGES, "Hello world"], params)
    assert len(results) == 4
    for r in results:
        assert r.prompt_token_ids == (chat_ids if r.prompt_index == 0 else [128000, 9906, 1917])
        full = tokenizer.decode(r.token_ids, skip_special_tokens=True)
        if r.stop_reason == "\n\n":
            assert r.text == full[:full.index("\n\n") + 2]
        else:
            assert r.text == full and "\n\n" not in full
        assert np.all(np.asarray(r.raw_logprobs) <= 0) and r.length == len(r.logprobs)


def test_chat_generation_stops_at_end_of_turn_without_being_told(tokenizer):
    """Llama 3's `eos_token` is <|end_of_text|>, but an assistant turn ends with <|eot_id|>:
    the sampler stops there by default (tokenizer.stop_token_ids)."""
    from jaxreason.tokenizer import stop_token_ids

    assert tokenizer.eos_token_id != EOT
    assert EOT in stop_token_ids(tokenizer) and tokenizer.eos_token_id in stop_token_ids(tokenizer)
    model = create_model(preset_config("llama-tiny", vocab_size=128256, hidden_size=32,
                                       intermediate_size=64, num_heads=2, num_kv_heads=1,
                                       tie_word_embeddings=False), seed=0)
    bias = np.zeros(128256, np.float32)
    bias[EOT] = 1e4  # the model always wants to end its turn
    params = dict(model.params, lm_head=model.params["lm_head"] * 0 + bias[None, :])
    sampler = Sampler(model, tokenizer)
    sampler.update_params(params)
    result = sampler.generate([MESSAGES], SamplingParams(temperature=0.0, max_new_tokens=8))[0]
    assert result.token_ids == [EOT] and result.finish_reason == "stop"
    assert result.stop_reason == EOT


def test_llama3_chat_model_directory_runs_a_math_suite_end_to_end(tokenizer, tmp_path):
    """A tiny Llama-3-vocabulary model saved as a HF directory (whose greedy chain, after the
    assistant header, writes "The answer is $\\boxed{5}$." then <|eot_id|>) through
    `launch/eval.py`'s trainer: chat template, <|eot_id|> stop, boxed extraction, grading."""
    import importlib.util
    import json
    import pathlib

    import jaxreason
    from jaxreason.train import get_trainer
    from sampling_helpers import markov_model

    header_end = 271  # "\n\n" after <|start_header_id|>assistant<|end_header_id|>
    chain = [header_end] + tokenizer.encode("The answer is $\\boxed{5}$.",
                                            add_special_tokens=False) + [EOT]
    model = markov_model(len(tokenizer), dict(zip(chain, chain[1:])))
    model_dir = tmp_path / "model"
    jaxreason.save_pretrained(model, model_dir)
    tokenizer.save_pretrained(model_dir)
    data = tmp_path / "math.jsonl"
    data.write_text("".join(json.dumps({"problem": f"What is {q}?", "answer": a}) + "\n"
                            for q, a in (("2+3", "5"), ("2+4", "6"), ("10/2", "5"))))
    spec = importlib.util.spec_from_file_location(
        "eval_math", pathlib.Path(__file__).resolve().parents[2] / "configs" / "eval" / "math.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.model.path, c.model.dtype = str(model_dir), "float32"
    c.suite.benchmarks = "math500"
    c.suite.math500.path = str(data)
    c.suite.math500.n = 0
    c.suite.math500.max_new_tokens = 16
    c.eval.grading_workers = 0
    c.log.progress = False
    summary = get_trainer("evaluate")(c, str(tmp_path / "eval"))
    items = [json.loads(line) for line in (tmp_path / "eval" / "math500" / "items.jsonl")
             .read_text().splitlines()]
    assert [it["greedy"]["completion"] for it in items] == ["The answer is $\\boxed{5}$."] * 3
    assert [it["greedy"]["finish"] for it in items] == ["stop"] * 3  # at <|eot_id|>
    assert [it["greedy"]["tokens"] for it in items] == [len(chain) - 1] * 3
    assert [it["greedy"]["correct"] for it in items] == [True, False, True]
    assert summary["eval"]["math500"] == pytest.approx(2 / 3)
