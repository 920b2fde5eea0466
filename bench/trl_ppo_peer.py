"""The PyTorch peer of `bench/ppo.py`: TRL's own PPO trainer on the CPU, timed phase by phase.

TRL dropped `PPOTrainer` in 1.x; its last home is `trl.experimental.ppo` of TRL 0.29.1, which
imports and runs with the installed transformers 5. `ensure_trl_ppo()` installs that wheel
(no dependencies) into a private directory, and `bench/ppo.py` runs this file in a subprocess
with that directory first on `sys.path`, so the project's own TRL stays as it is.

What TRL's PPO step does (`PPOTrainer.train`, one "update"): sample `response_length` tokens per
query with `model.generate`; reference forward; critic forward (a separate
`*ForSequenceClassification` model, as ours); the reward model; per-token KL-in-reward, GAE,
advantage whitening; `num_ppo_epochs` x `num_mini_batches` AdamW steps on the clipped
policy + value loss. TRL scores only with a reward *model*; for the same rule reward on both
sides (`bench/grpo.py`'s "contains =") the reward model passed here is a stand-in module
(`RuleReward`) that `get_reward` recognises and grades by decoding the response: no forward,
as the rule costs on our side.

Phases, per update: `sample` = `batch_generation` (tokens + logits of the rollout), `grade` =
the rule, `step` = start of one update's generation to the next's (the last one: to the end
of training), `train` = step - sample - grade (reference, critic and policy forwards, GAE,
backward passes, optimizer): the same split as our side's metrics.

Usage (in the subprocess): python bench/trl_ppo_peer.py MODEL_DIR TOKENIZER_DIR PROMPTS.json
    STEPS OUT.json [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

TRL_PPO_VERSION = "0.29.1"


def ensure_trl_ppo(directory: str | None = None) -> str:
    """A directory holding TRL 0.29.1 (the last TRL with a PPO trainer), installed there with
    pip if needed (wheel only, no dependencies: everything else is the environment's)."""
    directory = directory or os.path.join(os.path.expanduser("~"), ".cache", "jaxreason",
                                          f"trl-{TRL_PPO_VERSION}")
    if not os.path.isdir(os.path.join(directory, "trl", "experimental", "ppo")):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        directory, f"trl=={TRL_PPO_VERSION}"], check=True)
    return directory


def run_in_subprocess(trl_dir: str, model_dir: str, tokenizer_dir: str, prompts: list[str],
                      steps: int, *, rows: int, max_prompt_tokens: int, max_new_tokens: int,
                      torch_threads: int | None = None) -> dict[str, Any]:
    """Run `main` below with `trl_dir` first on the path; returns its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        prompt_file, out = os.path.join(tmp, "prompts.json"), os.path.join(tmp, "out.json")
        with open(prompt_file, "w") as f:
            json.dump(prompts, f)
        command = [sys.executable, os.path.abspath(__file__), model_dir, tokenizer_dir,
                   prompt_file, str(steps), out, "--rows", str(rows), "--max-prompt-tokens",
                   str(max_prompt_tokens), "--max-new-tokens", str(max_new_tokens)]
        if torch_threads:
            command += ["--threads", str(torch_threads)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [trl_dir, os.environ.get("PYTHONPATH", "")]), "TRL_EXPERIMENTAL_SILENCE": "1"}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"TRL PPO peer failed:\n{result.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def run_trl_ppo(model_dir: str, tokenizer_dir: str, prompts: list[str], *, rows: int,
                max_prompt_tokens: int, max_new_tokens: int, steps: int, warmup_steps: int = 1, kl_coef: float = 0.001,
                learning_rate: float = 1e-5, seed: int = 0) -> dict[str, Any]:
    """`steps + warmup_steps` PPO updates of `rows` completions each (one per prompt, in order),
    one epoch, one minibatch; prompts cut to their last `max_prompt_tokens` tokens; medians
    over the last `steps` updates."""
    import datasets
    import torch
    import transformers
    import trl
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    from trl.experimental.ppo import ppo_trainer

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.padding_side = "left"

    def load(cls: Any, **kw: Any) -> Any:
        return cls.from_pretrained(model_dir, dtype=torch.float32, **kw)

    policy = load(transformers.AutoModelForCausalLM)
    ref = load(transformers.AutoModelForCausalLM)
    value = load(transformers.AutoModelForSequenceClassification, num_labels=1)

    class RuleReward(torch.nn.Module):
        """Stands in for the reward model: `get_reward` grades it by rule, no forward."""

        def __init__(self) -> None:
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

    timestamps: list[float] = []
    sample_s: list[float] = []
    grade_s: list[float] = []
    lengths: list[float] = []
    original_generation, original_reward = ppo_trainer.batch_generation, ppo_trainer.get_reward

    def timed_generation(*args: Any, **kwargs: Any) -> Any:
        timestamps.append(time.perf_counter())
        sample_s.append(0.0)
        grade_s.append(0.0)
        start = time.perf_counter()
        out = original_generation(*args, **kwargs)
        sample_s[-1] += time.perf_counter() - start
        return out

    def rule_reward(model: Any, query_responses: Any, pad_token_id: int,
                    context_length: int) -> Any:
        if not isinstance(model, RuleReward):
            return original_reward(model, query_responses, pad_token_id, context_length)
        start = time.perf_counter()
        responses = query_responses[:, context_length:]
        lengths.append(float((responses != pad_token_id).sum()))
        texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
        scores = torch.tensor([1.0 if "=" in t else 0.0 for t in texts])
        grade_s[-1] += time.perf_counter() - start
        return None, scores, None

    ppo_trainer.batch_generation, ppo_trainer.get_reward = timed_generation, rule_reward
    total = steps + warmup_steps
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
           for p in prompts[: rows * total]]
    with tempfile.TemporaryDirectory() as output_dir, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = PPOConfig(
            output_dir=output_dir, use_cpu=True, bf16=False, fp16=False, report_to="none",
            save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=seed,
            learning_rate=learning_rate, lr_scheduler_type="constant",
            per_device_train_batch_size=rows, gradient_accumulation_steps=1,
            num_mini_batches=1, num_ppo_epochs=1, total_episodes=rows * total,
            local_rollout_forward_batch_size=rows, response_length=max_new_tokens,
            temperature=1.0, stop_token="eos", kl_coef=kl_coef, kl_estimator="k1",
            num_sample_generations=0, gradient_checkpointing=False,
            dataloader_num_workers=0)
        trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy,
                             ref_model=ref, reward_model=RuleReward(), value_model=value,
                             train_dataset=datasets.Dataset.from_dict({"input_ids": ids}))
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        trainer.train()
        timestamps.append(time.perf_counter())
    steps_s = [b - a for a, b in zip(timestamps, timestamps[1:])][warmup_steps:]
    sample, grade = sample_s[warmup_steps:], grade_s[warmup_steps:]  # one entry per update
    med = statistics.median
    return {"step_s": med(steps_s), "sample_s": med(sample), "grade_s": med(grade),
            "train_s": med(s - a - g for s, a, g in zip(steps_s, sample, grade)),
            "completion_tokens_per_step": med(lengths[warmup_steps:]),
            "trl_version": trl.__version__, "torch_threads": torch.get_num_threads(),
            "updates": len(timestamps) - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("tokenizer_dir")
    parser.add_argument("prompts")
    parser.add_argument("steps", type=int)
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-prompt-tokens", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    with open(args.prompts) as f:
        prompts = json.load(f)
    result = run_trl_ppo(args.model_dir, args.tokenizer_dir, prompts, rows=args.rows,
                         max_prompt_tokens=args.max_prompt_tokens,
                         max_new_tokens=args.max_new_tokens, steps=args.steps - 1)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
