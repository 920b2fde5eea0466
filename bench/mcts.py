"""Step-level MCTS throughput: node expansions per second with every tree's leaf in one device
call (batched over 64 trees) vs the same search expanding one leaf per call, in one run; and
the share of a step / rollout call spent in prefill vs decode.

    python bench/mcts.py                       # a random tiny Llama (steps end at a space)
    python bench/mcts.py --model /tmp/astro_tiny/warmup/export --delimiter '\\n'

Both modes run the same search settings (k candidates, M rollouts, `--iterations`); the
one-leaf mode runs on `--baseline-trees` problems (its rate per leaf does not depend on the
number of trees). Each mode is run twice with the same seed and the second run is timed, so
compilation is excluded. Prefill share: a call cut to one new token (prefill + one decode
step) over the full call, on the prefixes of the final trees' leaves.
"""

from __future__ import annotations

import argparse
import codecs
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import emit_json, print_table  # noqa: E402


def _sampler(args):
    from jaxreason import tasks
    from jaxreason.data import synthetic
    from jaxreason.model.config import preset_config
    from jaxreason.model.model import create_model, load_pretrained
    from jaxreason.sampling import Sampler
    from jaxreason.tokenizer import load_tokenizer, train_bpe_tokenizer

    task = tasks.get("countdown", reward="astro")
    if args.model:
        tokenizer = load_tokenizer(args.model)
        model = load_pretrained(args.model)
    else:
        train, _ = synthetic.generate("countdown", {"num_train": 200, "num_eval": 0}, 0)
        tokenizer = train_bpe_tokenizer([task.question(r) + task.reference_completion(
            r, chat=True) for r in train], 512)
        config = preset_config("llama-tiny", vocab_size=len(tokenizer), hidden_size=128,
                               intermediate_size=352, num_layers=4, num_heads=4, num_kv_heads=2,
                               head_dim=32, max_position_embeddings=512,
                               bos_token_id=tokenizer.bos_token_id,
                               eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id)
        model = create_model(config, seed=0)
    most = args.trees * args.k
    buckets = sorted({4 ** i for i in range(12) if 4 ** i < most} | {most})
    return task, Sampler(model, tokenizer, batch_buckets=buckets)


def _trees(task, sampler, n, seed=0):
    from jaxreason.data import synthetic
    from jaxreason.prompting import PromptFormat, prompt_token_ids
    from jaxreason.search import Tree

    records, _ = synthetic.generate("countdown", {"num_train": n, "num_eval": 0}, seed)
    fmt = PromptFormat(chat=True)
    return [Tree(id=i, record=r, prompt=prompt_token_ids(task.prompt(r, chat=True),
                                                         sampler.tokenizer, fmt))
            for i, r in enumerate(records)]


def _run(task, sampler, settings, n):
    from jaxreason.search import search_trees

    search_trees(sampler, task, _trees(task, sampler, n), settings)  # compile
    trees = _trees(task, sampler, n)
    start = time.perf_counter()
    stats = search_trees(sampler, task, trees, settings)
    return trees, stats, time.perf_counter() - start


def _prefill_share(sampler, prefixes, sampling):
    import dataclasses

    from jaxreason.generation import generate

    one = dataclasses.replace(sampling, max_new_tokens=1)
    for params in (one, sampling):
        generate(sampler, prefixes, params)  # compile
    t0 = time.perf_counter()
    generate(sampler, prefixes, one)
    t_prefill = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = generate(sampler, prefixes, sampling)
    t_full = time.perf_counter() - t0
    return t_prefill, t_full, float(full.lengths.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--trees", type=int, default=64)
    parser.add_argument("--baseline-trees", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--delimiter", default=" ")
    parser.add_argument("--max-step-tokens", type=int, default=16)
    parser.add_argument("--max-rollout-tokens", type=int, default=32)
    parser.add_argument("--leaves-per-call", default="",
                        help="also run these leaves-per-call sizes on --trees trees (e.g. 8,16)")
    args = parser.parse_args()

    import jax

    from jaxreason.sampling import SamplingParams
    from jaxreason.search import MCTSSettings

    task, sampler = _sampler(args)
    delimiter = codecs.decode(args.delimiter, "unicode_escape")
    settings = MCTSSettings(k=args.k, rollouts=args.rollouts, iterations=args.iterations,
                            max_depth=4, delimiter=(delimiter,),
                            max_step_tokens=args.max_step_tokens,
                            max_rollout_tokens=args.max_rollout_tokens, seed=0)
    one = MCTSSettings(**{**settings.__dict__, "max_leaves_per_call": 1})
    trees, batched, t_batched = _run(task, sampler, settings, args.trees)
    _, single, t_single = _run(task, sampler, one, args.baseline_trees)
    rate_b = batched.expansions / t_batched
    rate_s = single.expansions / t_single
    chunked = []
    for size in [int(x) for x in args.leaves_per_call.split(",") if x.strip()]:
        mode = MCTSSettings(**{**settings.__dict__, "max_leaves_per_call": size})
        _, st, t = _run(task, sampler, mode, args.trees)
        chunked.append([f"{size} leaves per call", args.trees, st.expansions, st.expand_calls,
                        t, st.expansions / t, st.expand_s, st.rollout_s, st.grade_s + st.host_s])

    leaves = [(t, n.id) for t in trees for n in t.nodes if n.parent is not None][: args.trees]
    prefixes = [t.prompt + t.path_tokens(i) for t, i in leaves]
    step_sampling = SamplingParams(n=args.k, max_new_tokens=args.max_step_tokens,
                                   stop=(delimiter,), seed=1)
    roll_sampling = SamplingParams(n=args.rollouts, max_new_tokens=args.max_rollout_tokens,
                                   seed=2)
    sp, sf, sl = _prefill_share(sampler, prefixes, step_sampling)
    rp, rf, rl = _prefill_share(sampler, prefixes, roll_sampling)

    rows = [["batched", args.trees, batched.expansions, batched.expand_calls, t_batched,
             rate_b, batched.expand_s, batched.rollout_s, batched.grade_s + batched.host_s],
            ["one leaf per call", args.baseline_trees, single.expansions, single.expand_calls,
             t_single, rate_s, single.expand_s, single.rollout_s, single.grade_s + single.host_s]] + chunked
    print_table(f"MCTS on {jax.devices()[0].platform} (k={args.k}, M={args.rollouts}, "
                f"{args.iterations} iterations)",
                ["mode", "trees", "expansions", "step calls", "seconds", "expansions/s",
                 "step s", "rollout s", "host+grade s"], rows)
    print(f"\nspeed-up: {rate_b / rate_s:.1f}x expansions/s")
    print_table("prefill share (one-token call / full call, same prefixes)",
                ["call", "prefixes", "x samples", "mean new tokens", "prefill s", "full s",
                 "prefill share"],
                [["step", len(prefixes), args.k, sl, sp, sf, sp / sf],
                 ["rollout", len(prefixes), args.rollouts, rl, rp, rf, rp / rf]])
    emit_json({"bench": "mcts", "platform": jax.devices()[0].platform,
               "expansions_per_s_batched": rate_b, "expansions_per_s_one_leaf": rate_s,
               "speedup": rate_b / rate_s, "prefill_share_step": sp / sf,
               "prefill_share_rollout": rp / rf, "trees": args.trees,
               "baseline_trees": args.baseline_trees, "k": args.k, "rollouts": args.rollouts,
               "iterations": args.iterations, "model": args.model or "random llama-tiny d128x4",
               "chunked": {row[0]: row[5] for row in chunked}})


if __name__ == "__main__":
    main()
