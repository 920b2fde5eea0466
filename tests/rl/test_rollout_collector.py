"""The GRPO rollout collector end to end on a scripted sampler: the dynamic-sampling redraw
loop (max_sampling_rounds, min_group_std), filler groups that carry no loss, mask_truncated,
the logged metrics against values computed from the same rollouts, and the step that runs no
extra forward for old log-probs when there is one update per step."""

import functools
import types

import jax
import numpy as np
import pytest

from configs import base
from jaxreason import losses, parallel
from jaxreason.advantages import group_advantages
from jaxreason.algorithms.grpo import logprob_pre_step
from jaxreason.algorithms.rollouts import RolloutCollector
from jaxreason.model import preset_config
from jaxreason.prompting import PromptFormat
from jaxreason.sampling.params import FINISH_LENGTH, FINISH_STOP_TOKEN
from jaxreason.tasks.base import Grade
from jaxreason.train.state import init_state, state_shardings
from jaxreason.train.step import make_train_step

GROUP, NEW_TOKENS = 4, 2
# Per prompt k (by k % 4): the first token of each of the 4 samples (1 = correct) and whether
# the last sample is cut off by the token budget.
FIRST_TOKENS = {0: [1, 1, 1, 1], 1: [1, 0, 0, 0], 2: [0, 0, 0, 0], 3: [1, 1, 0, 0]}
TRUNCATED = {3}


class Tokenizer:
    bos_token_id = None

    def encode(self, text, add_special_tokens=False):
        return [int(t) for t in text.split()]

    def decode(self, ids, skip_special_tokens=True, clean_up_tokenization_spaces=False):
        return " ".join(str(int(i)) for i in ids)


class Task:
    name = "scripted"

    def prompt(self, record, chat=False):
        return str(record["k"] + 10)

    def grade(self, record, completion):
        correct = completion.split()[0] == "1"
        return Grade(reward=float(correct), correct=correct, extracted=completion, reason="x")


class Sampler:
    """Sample s of prompt [k + 10]: tokens [first, 5][:length]; length 1 or 2."""

    pad_token_id = 0
    tokenizer = Tokenizer()

    def __init__(self):
        self.seeds = []

    def generate_ids(self, prompts, sampling, params=None):
        self.seeds.append(sampling.seed)
        rows = len(prompts) * sampling.n
        tokens = np.zeros((rows, sampling.max_new_tokens), np.int32)
        lengths = np.zeros(rows, np.int32)
        finish = np.full(rows, FINISH_STOP_TOKEN, np.int32)
        for p, prompt in enumerate(prompts):
            k = prompt[0] - 10
            for s in range(sampling.n):
                r = p * sampling.n + s
                truncated = k % 4 in TRUNCATED and s == sampling.n - 1
                lengths[r] = sampling.max_new_tokens if truncated else 1 + s % 2
                tokens[r, :2] = [FIRST_TOKENS[k % 4][s], 5]
                tokens[r, lengths[r]:] = 0
                finish[r] = FINISH_LENGTH if truncated else FINISH_STOP_TOKEN
        logprobs = -np.arange(1, rows * sampling.max_new_tokens + 1, dtype=np.float32).reshape(
            rows, -1) / 100
        return types.SimpleNamespace(
            tokens=tokens, logprobs=logprobs, raw_logprobs=logprobs, lengths=lengths,
            finish_codes=finish, stop_index=np.full(rows, -1, np.int32),
            prompt_index=np.repeat(np.arange(len(prompts)), sampling.n),
            sample_index=np.tile(np.arange(sampling.n), len(prompts)))


def collect(step=3, **grpo):
    c = base.get_config()
    c.grpo.update(dict(prompts_per_step=4, group_size=GROUP, max_prompt_tokens=4,
                       max_new_tokens=NEW_TOKENS, grading_workers=0, **grpo))
    sampler = Sampler()
    records = iter([{"k": k} for k in range(100)])
    collector = RolloutCollector(c, sampler, Tokenizer(), Task(), None, records, PromptFormat())
    rollouts = collector.collect(params=None, step=step)
    return rollouts, sampler, collector


def group_prompts(rows):
    """The prompt (k) of each group of rows."""
    return [int(k) - 10 for k in rows["input_ids"][::GROUP, 0]]


def test_dynamic_sampling_redraws_until_the_batch_is_full():
    rollouts, sampler, collector = collect(dynamic_sampling=True, max_sampling_rounds=3)
    rows, metrics = rollouts.rows, rollouts.metrics
    assert group_prompts(rows) == [1, 3, 5, 7]  # the informative groups of two draws
    assert metrics["sampling_rounds"] == 2 and metrics["filler_groups"] == 0
    assert metrics["groups_filtered_fraction"] == 0.5
    assert sampler.seeds == [collector.sampling_params(3, r).seed for r in range(2)]
    assert len(set(sampler.seeds)) == 2  # every round draws new samples
    rewards = np.array([[float(t) for t in FIRST_TOKENS[k % 4]] for k in [1, 3, 5, 7]])
    np.testing.assert_allclose(rows["advantages"], group_advantages(rewards).reshape(-1))
    lengths = (rows["loss_mask"] > 0).sum(axis=1)
    np.testing.assert_array_equal(lengths, [1, 2, 1, 2] * 3 + [1, 2, 1, 2])


def test_rounds_are_capped_and_filler_groups_carry_no_loss():
    rollouts, sampler, _ = collect(dynamic_sampling=True, max_sampling_rounds=1)
    rows, metrics = rollouts.rows, rollouts.metrics
    assert group_prompts(rows) == [1, 3, 0, 2]  # kept groups, then dropped ones as filler
    assert metrics["sampling_rounds"] == 1 and metrics["filler_groups"] == 2
    assert len(sampler.seeds) == 1
    filler = slice(2 * GROUP, 4 * GROUP)
    assert rows["loss_mask"][filler].sum() == 0 and not rows["advantages"][filler].any()
    assert rows["segment_ids"][filler].sum() > 0  # tokens kept, only the loss is off
    assert (rows["loss_mask"][: 2 * GROUP].sum(axis=1) > 0).all()


def test_min_group_std_keeps_only_groups_above_it():
    # std of [1,0,0,0] is 0.433, of [1,1,0,0] 0.5: only k % 4 == 3 passes 0.45.
    rollouts, _, _ = collect(dynamic_sampling=True, max_sampling_rounds=3, min_group_std=0.45)
    assert group_prompts(rollouts.rows) == [3, 7, 11, 0]
    assert rollouts.metrics["filler_groups"] == 1
    assert rollouts.metrics["groups_filtered_fraction"] == pytest.approx(1 - 3 / 12)


def test_mask_truncated_takes_the_loss_off_cut_completions_only():
    masked, _, _ = collect(mask_truncated=True)
    kept, _, _ = collect(mask_truncated=False)
    cut = 3 * GROUP + GROUP - 1  # prompt 3, last sample
    assert kept.rows["loss_mask"][cut].sum() == NEW_TOKENS
    assert masked.rows["loss_mask"][cut].sum() == 0
    others = np.arange(4 * GROUP) != cut
    np.testing.assert_array_equal(masked.rows["loss_mask"][others], kept.rows["loss_mask"][others])


def test_logged_metrics_match_the_rollouts():
    rollouts, _, _ = collect()
    m, rows = rollouts.metrics, rollouts.rows
    correct = np.array([FIRST_TOKENS[k][s] for k in range(4) for s in range(GROUP)], float)
    lengths = np.array([NEW_TOKENS if k in TRUNCATED and s == GROUP - 1 else 1 + s % 2
                        for k in range(4) for s in range(GROUP)], float)
    assert m["accuracy"] == pytest.approx(correct.mean())
    assert m["reward_mean"] == pytest.approx(correct.mean())
    assert m["reward_std"] == pytest.approx(correct.std())
    assert m["truncated_fraction"] == pytest.approx(1 / 16)
    assert m["response_length_mean"] == pytest.approx(lengths.mean())
    assert m["response_length_max"] == NEW_TOKENS
    np.testing.assert_array_equal((rows["loss_mask"] > 0).sum(axis=1), lengths)
    # the sampler's log-probs sit at the loss positions, in order
    first = rows["sampler_logprobs"][0][rows["loss_mask"][0] > 0]
    np.testing.assert_allclose(first, [-0.01])


@pytest.mark.parametrize("iterations, expected_forwards", [(1, 1), (2, 3)])
def test_no_extra_forward_for_old_logprobs_with_one_update(monkeypatch, iterations,
                                                           expected_forwards):
    from test_grpo_loss import make_batch

    calls = []
    original = losses.token_logprobs
    monkeypatch.setattr(losses, "token_logprobs",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    config = preset_config("llama-tiny", vocab_size=40, hidden_size=32, intermediate_size=64,
                           num_layers=1)
    mesh = parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    import optax

    optimizer = optax.adamw(1e-3)
    loss = functools.partial(losses.get_loss("grpo"), config=config, chunk_size=4)
    step = make_train_step(lambda p, b: loss(p, batch=b), optimizer,
                           optax.constant_schedule(1e-3), mesh=mesh,
                           state_shardings=state_shardings(config, optimizer, mesh),
                           pre_step=logprob_pre_step(config, old=iterations > 1, ref=False),
                           num_iterations=iterations)
    batch = parallel.host_local_to_global({k: np.asarray(v) for k, v in make_batch().items()},
                                          mesh)
    state, metrics = step(init_state(config, optimizer, mesh, seed=0), batch)
    assert len(calls) == expected_forwards  # traced forwards: pre-step + one per update
    assert int(state.step) == 1
    if iterations == 1:
        assert metrics["logprob_gap_old"] == 0  # the loss's own log-probs served as old
