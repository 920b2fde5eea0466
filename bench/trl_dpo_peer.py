"""The PyTorch peer of `bench/dpo.py`: TRL's `DPOTrainer` on the CPU, seconds per step.

`run_trl_dpo` trains a saved `transformers` model with `trl.DPOTrainer` (TRL 1.16) in float32
on the CPU: sigmoid DPO loss, beta 0.1, reference log-probs precomputed before training
(`precompute_ref_log_probs=True`, as jaxreason does, so a step is the policy's forward and
backward on the chosen and rejected sequences plus AdamW), no activation checkpointing, no
truncation, no logging backends, nothing saved. A step is timed from `on_step_begin` to
`on_step_end` of a `TrainerCallback` (the dataloader fetch of a pre-tokenized batch before it
is excluded); the precompute pass is not part of any step.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
import warnings
from typing import Any


def run_trl_dpo(model_dir: str, tokenizer_dir: str, pairs: list[dict[str, str]], *,
                pairs_per_step: int, steps: int, warmup_steps: int = 1, beta: float = 0.1,
                learning_rate: float = 1e-5, seed: int = 0,
                torch_threads: int | None = None) -> dict[str, Any]:
    """Train `steps + warmup_steps` DPO steps of `pairs_per_step` pairs; returns step_s (the
    median over the last `steps`), pairs_per_s, tokens_per_step (prompt + response tokens of
    both sides, as TRL tokenized them, mean over the steps' pairs), trl_version and
    torch_threads."""
    import datasets
    import torch
    import transformers
    import trl

    previous = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        times: list[float] = []

        class StepClock(transformers.TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                times.append(time.perf_counter() - self.start)

        names = {f.name for f in dataclasses.fields(trl.DPOConfig)}
        no_checkpointing = {"gradient_checkpointing": False}
        if "activation_checkpointing" in names:
            no_checkpointing["activation_checkpointing"] = False
        with tempfile.TemporaryDirectory() as output_dir, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            config = trl.DPOConfig(
                output_dir=output_dir, use_cpu=True, bf16=False, fp16=False,
                **no_checkpointing, report_to="none", save_strategy="no",
                logging_strategy="no", disable_tqdm=True, seed=seed, data_seed=seed,
                max_steps=steps + warmup_steps, learning_rate=learning_rate,
                lr_scheduler_type="constant", per_device_train_batch_size=pairs_per_step,
                gradient_accumulation_steps=1, beta=beta, loss_type=["sigmoid"],
                max_length=None, precompute_ref_log_probs=True, dataloader_num_workers=0)
            trainer = trl.DPOTrainer(
                model=model, args=config, processing_class=tokenizer,
                train_dataset=datasets.Dataset.from_list(pairs), callbacks=[StepClock()])
            trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
            data = trainer.train_dataset
            tokens = [2 * len(p) + len(c) + len(r) for p, c, r in
                      zip(data["prompt_ids"], data["chosen_ids"], data["rejected_ids"])]
            trainer.train()
        timed = times[warmup_steps:]
        if len(timed) != steps:
            raise RuntimeError(f"timed {len(times)} steps, expected {steps + warmup_steps}")
        step = float(statistics.median(timed))
        return {"step_s": step, "pairs_per_s": pairs_per_step / step,
                "tokens_per_step": statistics.mean(tokens) * pairs_per_step,
                "trl_version": trl.__version__, "torch_threads": torch.get_num_threads()}
    finally:
        torch.set_num_threads(previous)
