"""The PyTorch peer of `bench/grpo.py`: TRL's `GRPOTrainer` on the CPU, timed phase by phase.

`run_trl_grpo` trains a saved `transformers` model with `trl.GRPOTrainer` in float32 on the CPU
(no vLLM, no reference model, no logging backends, nothing saved) and returns the median seconds
per optimizer step and its split into sampling, grading and training. The split is taken by
subclassing the trainer, so it follows TRL's own call structure (TRL 1.16):

  step   on_step_begin -> on_step_end of a `TrainerCallback`: one optimizer step, i.e. generation,
         scoring, advantages, forward/backward, grad clipping, AdamW, scheduler, zero_grad
         (the dataloader fetch before on_step_begin is excluded; it is a list of strings).
  sample `GRPOTrainer._generate`: tokenize the prompts, `model.generate`, cut at EOS, decode.
  grade  `GRPOTrainer._calculate_rewards`: the reward function over all completions.
  train  the step minus `_prepare_inputs` (which holds generation and scoring), plus any policy
         forward made inside `_prepare_inputs` (old / reference log-probs). With
         num_iterations=1 and beta=0 TRL makes no such forward: it reuses the detached
         log-probs of the loss forward as the "old" ones, so train = forward + backward + step.
  other  the rest of `_prepare_inputs` (padding, advantages, TRL's metric bookkeeping), so that
         sample + grade + train + other = step for every step.

Usage: python bench/trl_grpo_peer.py [--threads N]  (builds a tiny random Llama + BPE tokenizer
and prints the result dict of a short run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import tempfile
import time
import warnings
from typing import Any, Callable, Iterator

RewardFn = Callable[[list[str], list[str]], list[float]]  # (prompts, completions) -> rewards


class _PhaseTimer:
    """Seconds spent in named phases during the current optimizer step, kept per step."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.steps: list[dict[str, float]] = []
        self.depth: dict[str, int] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        # Re-entrant calls of one phase are counted once (the outermost call).
        self.depth[name] = self.depth.get(name, 0) + 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.depth[name] -= 1
            if self.depth[name] == 0:
                self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - start

    def add(self, name: str, value: float) -> None:
        self.current[name] = self.current.get(name, 0.0) + value


def _truncate_prompts(tokenizer: Any, prompts: list[str], max_prompt_tokens: int) -> list[str]:
    """Keep each prompt's last `max_prompt_tokens` tokens (TRL 1.16 has no max_prompt_length)."""
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) > max_prompt_tokens:
            prompt = tokenizer.decode(ids[-max_prompt_tokens:])
            if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) > max_prompt_tokens:
                raise ValueError(f"prompt {prompt[:60]!r}... does not fit max_prompt_tokens="
                                 f"{max_prompt_tokens} after truncation")
        out.append(prompt)
    return out


def run_trl_grpo(model_dir: str, tokenizer_dir: str, prompts: list[str], reward_fn: RewardFn, *,
                 prompts_per_step: int, group_size: int, max_prompt_tokens: int,
                 max_new_tokens: int, steps: int, warmup_steps: int = 1,
                 learning_rate: float = 1e-5, temperature: float = 1.0,
                 seed: int = 0, torch_threads: int | None = None) -> dict[str, Any]:
    """Train `steps + warmup_steps` GRPO steps with TRL on the CPU; medians over the last `steps`.

    Each step takes the next `prompts_per_step` prompts in order (no shuffling), samples
    `group_size` completions of at most `max_new_tokens` tokens each (temperature `temperature`,
    top_p 1, no top_k), grades them with `reward_fn(prompts, completions)` (one prompt string
    per completion), and makes one AdamW step on the DAPO loss (token-level mean over all
    completion tokens of the step), with beta=0 and num_iterations=1.

    torch_threads: intra-op threads for this run (default: torch's current setting, restored
    afterwards). On a 2-core machine that other processes also use, 2 threads can be 5-10x
    slower than 1 (OpenMP threads wait on each other at every small op of generation).

    Returns step_s, sample_s, grade_s, train_s, other_s (median seconds; see the module
    docstring for what each covers), completion_tokens_per_step (mean over timed steps of the
    real completion tokens, i.e. up to and including EOS), padded_completion_tokens_per_step
    (batch x longest completion, what the training forward runs on),
    extra_policy_forwards_per_step (old / reference log-prob forwards; 0 here), trl_version,
    torch_threads.
    """
    import torch

    if steps < 1 or warmup_steps < 0:
        raise ValueError(f"steps={steps} must be >= 1 and warmup_steps={warmup_steps} >= 0")
    if len(prompts) < prompts_per_step:
        raise ValueError(f"{len(prompts)} prompts given, fewer than prompts_per_step="
                         f"{prompts_per_step}")

    previous_threads = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    try:
        return _run(model_dir, tokenizer_dir, prompts, reward_fn, prompts_per_step=prompts_per_step,
                    group_size=group_size, max_prompt_tokens=max_prompt_tokens,
                    max_new_tokens=max_new_tokens, steps=steps, warmup_steps=warmup_steps,
                    learning_rate=learning_rate, temperature=temperature, seed=seed)
    finally:
        torch.set_num_threads(previous_threads)


def _run(model_dir: str, tokenizer_dir: str, prompts: list[str], reward_fn: RewardFn, *,
         prompts_per_step: int, group_size: int, max_prompt_tokens: int, max_new_tokens: int,
         steps: int, warmup_steps: int, learning_rate: float, temperature: float,
         seed: int) -> dict[str, Any]:
    import datasets
    import torch
    import transformers
    import trl

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.padding_side = "left"
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    prompts = _truncate_prompts(tokenizer, list(prompts), max_prompt_tokens)

    timer = _PhaseTimer()
    completion_lengths: list[list[int]] = []

    class StepClock(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            timer.current = {}
            completion_lengths.append([])
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            timer.current["step"] = time.perf_counter() - self.start
            timer.steps.append(timer.current)

    class TimedGRPOTrainer(trl.GRPOTrainer):
        def _prepare_inputs(self, generation_batch):
            with timer.phase("prepare"):
                return super()._prepare_inputs(generation_batch)

        def _generate(self, prompts):
            with timer.phase("sample"):
                out = super()._generate(prompts)
            completion_lengths[-1].extend(len(ids) for ids in out[1])
            return out

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            with timer.phase("grade"):
                return super()._calculate_rewards(inputs, prompts, completions,
                                                  completion_ids_list)

        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            # Policy forwards outside the loss (old / reference log-probs) count as training.
            if timer.depth.get("prepare", 0):
                timer.add("prepare_forwards", 1)
                with timer.phase("prepare_logps"):
                    return super()._get_per_token_logps_and_entropies(*args, **kwargs)
            return super()._get_per_token_logps_and_entropies(*args, **kwargs)

    def reward(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        return [float(r) for r in reward_fn(list(prompts), list(completions))]

    # TRL turns activation checkpointing on by default; transformers 5 renamed the switch.
    names = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    no_checkpointing = ({"activation_checkpointing": False} if "activation_checkpointing" in names
                        else {"gradient_checkpointing": False})
    with tempfile.TemporaryDirectory() as output_dir, warnings.catch_warnings():
        # TRL 1.16 still reads `model.is_gradient_checkpointing` (deprecated in transformers 5).
        warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6",
                                category=FutureWarning)
        config = trl.GRPOConfig(
            output_dir=output_dir, use_cpu=True, bf16=False, fp16=False,
            **no_checkpointing, report_to="none", save_strategy="no",
            logging_strategy="no", disable_tqdm=True, seed=seed, data_seed=seed,
            max_steps=steps + warmup_steps, learning_rate=learning_rate,
            lr_scheduler_type="constant",
            per_device_train_batch_size=prompts_per_step * group_size,
            gradient_accumulation_steps=1, num_generations=group_size, num_iterations=1,
            beta=0.0, loss_type="dapo", mask_truncated_completions=False,
            max_completion_length=max_new_tokens, temperature=temperature, top_p=1.0, top_k=0,
            use_vllm=False, shuffle_dataset=False, dataloader_num_workers=0,
            log_completions=False)
        trainer = TimedGRPOTrainer(
            model=model, reward_funcs=reward, args=config, processing_class=tokenizer,
            train_dataset=datasets.Dataset.from_dict({"prompt": prompts}),
            callbacks=[StepClock()])
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        trainer.train()

    timed = timer.steps[warmup_steps:]
    lengths = completion_lengths[warmup_steps:]
    if len(timed) != steps:
        raise RuntimeError(f"timed {len(timer.steps)} steps, expected {steps + warmup_steps}")

    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    rows = []
    for t in timed:
        train = t["step"] - t.get("prepare", 0.0) + t.get("prepare_logps", 0.0)
        other = (t.get("prepare", 0.0) - t.get("sample", 0.0) - t.get("grade", 0.0)
                 - t.get("prepare_logps", 0.0))
        rows.append(dict(step=t["step"], sample=t.get("sample", 0.0),
                         grade=t.get("grade", 0.0), train=train, other=other))
    return {
        "step_s": median([r["step"] for r in rows]),
        "sample_s": median([r["sample"] for r in rows]),
        "grade_s": median([r["grade"] for r in rows]),
        "train_s": median([r["train"] for r in rows]),
        "other_s": median([r["other"] for r in rows]),
        "completion_tokens_per_step": statistics.mean(sum(step) for step in lengths),
        "padded_completion_tokens_per_step": statistics.mean(len(step) * max(step)
                                                             for step in lengths),
        "extra_policy_forwards_per_step": median([t.get("prepare_forwards", 0.0) for t in timed]),
        "trl_version": trl.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _countdown_texts(count: int, seed: int = 0) -> list[str]:
    import random
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        numbers = [rng.randint(1, 99) for _ in range(rng.randint(3, 4))]
        target = rng.randint(10, 200)
        texts.append(f"Using the numbers {numbers}, create an equation that equals {target}.\n")
    return texts


def main() -> None:
    import argparse
    import os

    import torch
    import transformers

    from jaxreason.tokenizer import train_bpe_tokenizer

    parser = argparse.ArgumentParser(description="TRL GRPO peer on a tiny random Llama")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    start = time.perf_counter()
    texts = _countdown_texts(2000)
    corpus = texts + [f"{a} + {b} = {a + b}\n{a} * {b} = {a * b}\n"
                      for a, b in zip(range(1, 200), range(200, 1, -1))]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, tokenizer_dir = os.path.join(tmp, "model"), os.path.join(tmp, "tokenizer")
        tokenizer = train_bpe_tokenizer(corpus, 512)
        tokenizer.save_pretrained(tokenizer_dir)
        torch.manual_seed(0)
        config = transformers.LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688,
            num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
            max_position_embeddings=1024, tie_word_embeddings=False,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id)
        transformers.LlamaForCausalLM(config).save_pretrained(model_dir)

        def reward_fn(prompts: list[str], completions: list[str]) -> list[float]:
            return [1.0 if "=" in c else 0.0 for c in completions]

        result = run_trl_grpo(model_dir, tokenizer_dir, texts[:64], reward_fn,
                              prompts_per_step=8, group_size=4, max_prompt_tokens=64,
                              max_new_tokens=64, steps=3, torch_threads=args.threads)
    print(result)
    print(f"total wall time {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
