"""SFT training throughput: jaxreason's train step vs a plain PyTorch loop over `transformers`.

Both train the same architecture on the same random batch with AdamW and global-norm clipping:
jaxreason runs its jitted step (chunked log-probs, fp32 master weights, `--dtype` compute); the
peer runs `LlamaForCausalLM` forward + cross-entropy + backward + `clip_grad_norm_` +
`torch.optim.AdamW.step`, eager, in float32 (autocast to bf16 on CUDA with `--dtype
bfloat16`). Each runs in its own process (neither inherits the other's thread pool); after
both have warmed up, their timed steps alternate one by one (jax, torch, jax, ...) with the
other process idle, so load from other work on a shared machine hits both sides alike. The
median step time of `--steps` timed steps is reported, with the machine's load average.
Prints a table, the jaxreason/PyTorch ratio, MFU where the chip's bf16 peak is known, and as
the last line one JSON object.

With `--lora`, the two sides are instead jaxreason full fine-tuning and jaxreason LoRA (rank
`--lora-rank` on every projection, base optionally `--lora-quant`ized) on the same model and
batch, alternating the same way; besides step times it reports each side's trainable
parameters, train-state bytes, the compiled step's temporary bytes and, where the device
reports it (GPU / TPU), the peak memory in use.

    python bench/train.py                                   # CPU, llama-small shape
    python bench/train.py --model llama-3.2-1b --dtype bfloat16 --seq 2048 --batch 8 --no-peer
    python bench/train.py --lora                            # LoRA vs full fine-tuning
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
HF_CONFIGS = REPO / "tests" / "fixtures" / "hf_configs"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="llama-small",
                   help="a preset (llama-tiny, llama-small) or an HF config.json name under "
                        "tests/fixtures/hf_configs (llama-3.2-1b) or a path to a config.json")
    p.add_argument("--vocab", type=int, default=None, help="vocabulary size of presets")
    p.add_argument("--dtype", default="float32", help="compute dtype (float32 | bfloat16)")
    p.add_argument("--batch", type=int, default=8, help="rows per step")
    p.add_argument("--seq", type=int, default=256, help="positions per row")
    p.add_argument("--steps", type=int, default=10,
                   help="timed steps of each side after 2 warm-up steps, alternating between "
                        "the sides (the median step time is reported)")
    p.add_argument("--remat", default="none", help="remat policy (none | full | dots | ...)")
    p.add_argument("--scan", action="store_true", help="scan over layers")
    p.add_argument("--chunk", type=int, default=512, help="log-prob chunk size")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for both (0: all cores; 1: a per-core comparison that "
                        "other work on the machine disturbs least)")
    p.add_argument("--no-peer", action="store_true", help="skip the PyTorch peer")
    p.add_argument("--lora", action="store_true",
                   help="compare jaxreason LoRA with jaxreason full fine-tuning (no PyTorch)")
    p.add_argument("--lora-rank", type=int, default=16, help="adapter rank with --lora")
    p.add_argument("--lora-quant", default="none", help="base storage with --lora: none | int8 "
                                                        "| nf4")
    p.add_argument("--worker", choices=("jax", "jax-lora", "torch"), help=argparse.SUPPRESS)
    return p.parse_args()


def model_config(args: argparse.Namespace):
    from jaxreason.model.config import PRESETS, load_config, preset_config

    numerics = dict(dtype=args.dtype, param_dtype="float32", remat_policy=args.remat,
                    scan_layers=args.scan)
    if args.model in PRESETS:
        extra = {"vocab_size": args.vocab} if args.vocab else {}
        return preset_config(args.model, **extra, **numerics)
    path = pathlib.Path(args.model)
    if not path.exists():
        path = HF_CONFIGS / f"{args.model}.json"
    if not path.exists():
        sys.exit(f"error: --model {args.model!r}: not a preset and no config at {path}")
    return load_config(path, **numerics)


def random_batch(config, rows: int, length: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, config.vocab_size, (rows, length + 1)).astype(np.int32)
    return {"input_ids": tokens[:, :-1], "targets": tokens[:, 1:],
            "positions": np.tile(np.arange(length, dtype=np.int32), (rows, 1)),
            "segment_ids": np.ones((rows, length), np.int32),
            "loss_mask": np.ones((rows, length), np.float32)}


def setup_jax(config, batch: dict, args: argparse.Namespace) -> dict:
    """The compiled, warmed-up step (`step() -> loss`) and facts about the run."""
    import jax
    import optax

    from jaxreason import losses, parallel
    from jaxreason.model import lora
    from jaxreason.train import state as train_state
    from jaxreason.train.optim import decay_mask
    from jaxreason.train.step import make_train_step
    from jaxreason.train.trainable import trainable

    if args.worker == "jax-lora":
        config = config.replace(lora=lora.LoraConfig(rank=args.lora_rank, alpha=2.0 * args.lora_rank,
                                                     quantization=args.lora_quant))

    mesh = parallel.make_mesh()
    schedule = optax.constant_schedule(1e-4)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0),
                            optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=0.01,
                                        mask=decay_mask))
    state = train_state.init_state(config, optimizer, mesh, seed=0)
    loss = functools.partial(losses.sft_loss, config=config, chunk_size=args.chunk)
    step = make_train_step(lambda p, b: loss(p, batch=b), optimizer, schedule, mesh=mesh,
                           state_shardings=train_state.state_shardings(config, optimizer, mesh))
    global_batch = parallel.host_local_to_global(batch, mesh)
    holder = {"state": state}

    def run_step() -> float:
        holder["state"], metrics = step(holder["state"], global_batch)
        jax.block_until_ready(metrics)
        return float(metrics["loss"])

    compiled = step.jitted.lower(state, global_batch, None).compile()
    analysis = compiled.memory_analysis()
    t0 = time.perf_counter()
    run_step()
    compile_s = time.perf_counter() - t0
    run_step()
    stats = jax.devices()[0].memory_stats() or {}
    leaves = jax.tree.leaves(holder["state"])
    return {"step": run_step, "first_step_s": compile_s,
            "device": jax.devices()[0].device_kind, "num_devices": jax.device_count(),
            "trainable_params": sum(x.size for x in jax.tree.leaves(
                trainable(holder["state"].params))),
            "state_bytes": sum(x.nbytes for x in leaves),
            "temp_bytes": None if analysis is None else int(analysis.temp_size_in_bytes),
            "peak_bytes": stats.get("peak_bytes_in_use")}


def setup_torch(config, batch: dict, args: argparse.Namespace) -> dict | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    from jaxreason.model.config import config_to_hf_dict

    torch.manual_seed(0)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.dtype == "bfloat16" and device == "cpu":
        return None  # the CPU peer is float32 only (bf16 CPU kernels are not representative)
    hf = transformers.LlamaConfig(**{k: v for k, v in config_to_hf_dict(
        config.replace(architecture="llama")).items() if k not in ("architectures",)})
    hf._attn_implementation = "sdpa"
    model = transformers.LlamaForCausalLM(hf).to(device).train()
    decay = [p for n, p in model.named_parameters() if "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4,
                            betas=(0.9, 0.95))
    ids = torch.from_numpy(batch["input_ids"]).long().to(device)
    targets = torch.from_numpy(batch["targets"]).long().to(device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16")

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with autocast:
            logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1),
                                                 targets.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss.detach())

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def run_step() -> float:
        loss = step()
        sync()
        return loss

    run_step(), run_step()
    return {"step": run_step,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}


def serve_worker(setup: dict | None) -> None:
    """Worker side of the lock-step protocol: print `ready`, then for every `step` line on
    stdin run one step and print its seconds; on `done` print one JSON object of the run."""
    if setup is None:
        print(json.dumps(None), flush=True)
        return
    run_step = setup.pop("step")
    print("ready", flush=True)
    times, loss = [], float("nan")
    for line in sys.stdin:
        if line.strip() != "step":
            break
        t0 = time.perf_counter()
        loss = run_step()
        times.append(time.perf_counter() - t0)
        print(times[-1], flush=True)
    print(json.dumps({**setup, "step_s": statistics.median(times), "loss": loss}), flush=True)


class Worker:
    """One implementation in its own process (neither inherits the other's threads: XLA's and
    PyTorch's thread pools on the same cores slow each other down), driven step by step."""

    def __init__(self, kind: str, threads: int | None = None):
        self.kind = kind
        argv = [a for a in sys.argv[1:] if not a.startswith("--worker")]
        if threads is not None:
            argv = [a for a in argv if not a.startswith("--threads")] + [f"--threads={threads}"]
        env = dict(os.environ)
        if kind.startswith("jax") and parse_args().threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1").strip()
        self.stderr = tempfile.TemporaryFile("w+")  # a file: a full pipe would block it
        self.proc = subprocess.Popen([sys.executable, __file__, *argv, f"--worker={kind}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self.result: dict | None = None
        first = self._line()
        if first != "ready":  # the peer is unavailable (null) or the run failed
            self._finish(first)

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.stderr.seek(0)
            sys.exit(f"error: the {self.kind} run failed:\n{self.stderr.read()[-3000:]}")
        return line.strip()

    def _finish(self, line: str) -> None:
        self.result = json.loads(line) or None
        self.proc.communicate()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None

    def step(self) -> float:
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        return float(self._line())

    def done(self) -> dict | None:
        if self.running:
            self.proc.stdin.write("done\n")
            self.proc.stdin.flush()
            self._finish(self._line())
        return self.result


def run_workers(kinds: list[tuple[str, int | None]], steps: int) -> list[dict | None]:
    """Start and warm up each (kind, threads) worker in turn, then alternate their steps."""
    workers = [Worker(kind, threads) for kind, threads in kinds]
    live = [w for w in workers if w.running]
    for _ in range(steps):
        for w in live:
            time.sleep(0.2)  # let the other side's idle threads go to sleep
            w.step()
    return [w.done() for w in workers]


def main() -> None:
    args = parse_args()
    config = model_config(args)
    if args.worker:
        batch = random_batch(config, args.batch, args.seq)
        setup = setup_torch if args.worker == "torch" else setup_jax
        serve_worker(setup(config, batch, args))
        return
    if args.lora:
        compare_lora(args, config)
        return
    from jaxreason.train.metrics import mfu, peak_flops

    tokens = args.batch * args.seq
    flops_per_token = config.flops_per_token(args.seq)
    # On a shared CPU, torch's OpenMP threads can run far slower than one thread (they spin
    # waiting for each other when other work holds the cores): the peer runs with all cores
    # and with one thread, and gets the faster.
    peer_threads = [None]
    if not args.no_peer and not args.threads and (os.cpu_count() or 1) > 1:
        peer_threads = [None, 1]
    kinds = [("jax", None)] + ([] if args.no_peer else [("torch", t) for t in peer_threads])
    ours, *peers = run_workers(kinds, args.steps)
    peers = [(t, p) for t, p in zip(peer_threads, peers) if p]
    peer_threads_used, peer = min(peers, key=lambda tp: tp[1]["step_s"]) if peers else (None,
                                                                                          None)
    load = os.getloadavg()

    rows = [("jaxreason", ours)] + [(f"pytorch, {t or os.cpu_count()} thread(s)", p)
                                    for t, p in peers]
    print(f"model {args.model}: {config.num_params / 1e6:.1f}M params, {config.num_layers} "
          f"layers, hidden {config.hidden_size}, vocab {config.vocab_size}; batch {args.batch} x "
          f"{args.seq}, compute {args.dtype}, device {ours['device']} x {ours['num_devices']}, "
          f"threads {args.threads or 'all'}; load average {load[0]:.1f} (1 min), "
          f"{load[1]:.1f} (5 min) on {os.cpu_count()} cores")
    print(f"{'implementation':<22}{'step ms':>10}{'tokens/s':>12}{'TFLOP/s':>10}{'MFU':>8}"
          f"{'loss':>9}")
    figures: dict = {"model": args.model, "params_m": round(config.num_params / 1e6, 2),
                     "batch": args.batch, "seq": args.seq, "dtype": args.dtype,
                     "threads": args.threads or os.cpu_count(),
                     "device": ours["device"], "num_devices": ours["num_devices"],
                     "first_step_s": round(ours["first_step_s"], 2),
                     "load_avg_1m": round(load[0], 2), "cpu_count": os.cpu_count()}
    for name, r in rows:
        tps = tokens / r["step_s"]
        tflops = flops_per_token * tps / 1e12
        u = mfu(flops_per_token, tps, ours["num_devices"] if name == "jaxreason" else 1,
                r["device"])
        print(f"{name:<22}{r['step_s'] * 1e3:>10.1f}{tps:>12.0f}{tflops:>10.3f}"
              f"{(f'{100 * u:.1f}%' if u is not None else 'n/a'):>8}{r['loss']:>9.4f}")
        if name != "jaxreason" and r is not peer:
            continue
        key = "jax" if name == "jaxreason" else "torch"
        figures[f"{key}_tokens_per_s"] = round(tps, 1)
        figures[f"{key}_step_ms"] = round(r["step_s"] * 1e3, 2)
        figures[f"{key}_mfu"] = None if u is None else round(u, 4)
    for t, p in peers:
        figures[f"torch_threads_{t or figures['threads']}_step_ms"] = round(p["step_s"] * 1e3, 2)
    if peer:
        figures["torch_threads"] = peer_threads_used or figures["threads"]
        ratio = peer["step_s"] / ours["step_s"]
        figures["speedup_vs_torch"] = round(ratio, 3)
        print(f"jaxreason / PyTorch tokens/s: {ratio:.2f}x")
    peak = peak_flops(ours["device"])
    figures["peak_bf16_tflops_per_device"] = None if peak is None else peak / 1e12
    if peak is None:
        print(f"MFU: no bf16 peak known for {ours['device']!r} (known: H100/H200/A100/TPU)")
    print(json.dumps(figures))


def compare_lora(args: argparse.Namespace, config) -> None:
    """LoRA vs full fine-tuning, both jaxreason, alternating step by step."""
    full, adapted = run_workers([("jax", None), ("jax-lora", None)], args.steps)
    load = os.getloadavg()
    tokens = args.batch * args.seq
    print(f"model {args.model}: {config.num_params / 1e6:.1f}M params, {config.num_layers} "
          f"layers, hidden {config.hidden_size}; batch {args.batch} x {args.seq}, compute "
          f"{args.dtype}, device {full['device']} x {full['num_devices']}; LoRA rank "
          f"{args.lora_rank} on q,k,v,o,gate,up,down, base {args.lora_quant}; load average "
          f"{load[0]:.1f} (1 min) on {os.cpu_count()} cores")

    def mb(x):
        return "n/a" if x is None else f"{x / 2**20:.1f}"

    print(f"{'training':<10}{'step ms':>10}{'tokens/s':>11}{'trainable':>12}{'state MB':>10}"
          f"{'temp MB':>9}{'peak MB':>9}{'loss':>9}")
    figures: dict = {"model": args.model, "batch": args.batch, "seq": args.seq,
                     "dtype": args.dtype, "lora_rank": args.lora_rank,
                     "lora_quant": args.lora_quant, "device": full["device"],
                     "num_devices": full["num_devices"], "load_avg_1m": round(load[0], 2),
                     "cpu_count": os.cpu_count()}
    for name, r in (("full", full), ("lora", adapted)):
        print(f"{name:<10}{r['step_s'] * 1e3:>10.1f}{tokens / r['step_s']:>11.0f}"
              f"{r['trainable_params']:>12d}{mb(r['state_bytes']):>10}{mb(r['temp_bytes']):>9}"
              f"{mb(r['peak_bytes']):>9}{r['loss']:>9.4f}")
        for key in ("trainable_params", "state_bytes", "temp_bytes", "peak_bytes"):
            figures[f"{name}_{key}"] = r[key]
        figures[f"{name}_step_ms"] = round(r["step_s"] * 1e3, 2)
    ratio = full["step_s"] / adapted["step_s"]
    figures["lora_speedup_vs_full"] = round(ratio, 3)
    figures["lora_state_fraction"] = round(adapted["state_bytes"] / full["state_bytes"], 4)
    print(f"LoRA / full step speed: {ratio:.2f}x; LoRA train state is "
          f"{100 * figures['lora_state_fraction']:.1f}% of full fine-tuning's")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
