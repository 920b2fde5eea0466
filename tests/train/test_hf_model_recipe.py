"""The pod recipe's code path at toy size: a model from a Hugging Face directory, MATH-style
records through the "math" task and the chat template, steps counted from the epochs, layers
under scan with remat; the export loads back in `transformers`."""

import json

import pytest

import train_runs as runs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RECIPE = runs.REPO / "configs" / "sft_llama3_8b_math.py"


@pytest.fixture()
def hf_model_dir(tmp_path):
    from jaxreason.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer([f"What is {a} times {b}? \\boxed{{{a * b}}}"
                                     for a in range(20) for b in range(20)], 320)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    directory = tmp_path / "hf_model"
    transformers.LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _math_records(path, n=24):
    with open(path, "w") as f:
        for i in range(n):
            a, b = i % 7 + 2, i // 7 + 3
            f.write(json.dumps({"problem": f"What is {a} times {b}?",
                                "solution": f"{a} times {b} is \\boxed{{{a * b}}}."}) + "\n")
    return path


def test_hf_directory_model_trains_with_chat_math_records_and_exports(tmp_path, hf_model_dir):
    data = _math_records(tmp_path / "math.jsonl")
    workdir = tmp_path / "run"
    result = runs.run(workdir, f"--config.model.path={hf_model_dir}",
                      f"--config.data.train={data}", f"--config.eval.data={data}",
                      "--config.eval.num_examples=4", "--config.eval.max_new_tokens=8",
                      "--config.eval.grading_workers=0",
                      "--config.model.dtype=float32", "--config.model.remat_policy=full",
                      "--config.data.max_length=160", "--config.data.num_epochs=2",
                      "--config.train.batch_size=4", "--config.train.logprob_chunk_size=16",
                      "--config.optim.learning_rate=1e-3", "--config.optim.warmup_steps=1",
                      "--config.checkpoint.every=0", "--config.log.progress=False",
                      "--config.checkpoint.export_dtype=float32", config=RECIPE)
    assert result.returncode == 0, result.stderr[-4000:]
    records = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    # Steps counted from the data: 2 epochs of 24 records, several records per 160-position row.
    assert 2 <= len(train) <= 12
    assert all(r["skipped_examples"] == 0 and r["truncated_examples"] == 0 for r in train)
    assert train[-1]["loss"] < train[0]["loss"]
    assert train[0]["loss_tokens"] < train[0]["tokens"]  # prompts (chat turn) carry no loss
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals and evals[-1]["num_examples"] == 4
    model = transformers.AutoModelForCausalLM.from_pretrained(workdir / "export")
    assert model.config.num_hidden_layers == 2 and not model.config.tie_word_embeddings
