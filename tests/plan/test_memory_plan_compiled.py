"""`--dry_run_compile`: the real train step and sampler program of a scaled-down GRPO recipe
compile from abstract inputs on the 8 simulated devices, and XLA's memory analysis agrees with
the closed form to within a small factor (slow: two compilations)."""

import pathlib
import sys

import pytest
from ml_collections import ConfigDict

REPO = pathlib.Path(__file__).resolve().parents[2]


def _scaled_grpo(remat_policy: str, num_minibatches: int) -> ConfigDict:
    sys.path.insert(0, str(REPO))
    from configs import astro_rl_llama3_70b

    c = astro_rl_llama3_70b.get_config()
    c.model.path, c.model.preset = None, "llama-3.2-1b"
    c.model.overrides = ConfigDict({"num_layers": 2})
    c.model.dtype = "float32"  # XLA:CPU computes bfloat16 in float32: compare like with like
    c.model.remat_policy = remat_policy
    c.mesh.tensor = 2
    c.grpo.update(dict(prompts_per_step=16, max_prompt_tokens=128, max_new_tokens=384,
                       num_minibatches=num_minibatches))
    c.train.num_microbatches, c.train.logprob_chunk_size = 2, 128
    c.eval.data = None
    return c


@pytest.mark.slow
@pytest.mark.parametrize("remat_policy, num_minibatches", [("full", 1), ("dots_no_batch", 2)])
def test_compiled_memory_agrees_with_the_closed_form(remat_policy, num_minibatches):
    from jaxreason.train.dry_run import plan_recipe

    (plan,) = plan_recipe(_scaled_grpo(remat_policy, num_minibatches), "tpu-v5p",
                          compile_programs=True)
    step, sampler = plan.compiled["train_step"], plan.compiled["sampler"]
    # arguments: the state (params + Adam moments) and the batch
    state = plan.params_bytes + plan.optimizer_bytes
    assert state <= step["argument_bytes"] <= 1.05 * state + 64 * 2**20
    closed = plan.gradients_bytes + max(plan.compiled["closed_form_activations_bytes"],
                                        plan.compiled["closed_form_prestep_bytes"])
    assert 0.5 * closed <= step["temp_bytes"] <= 2.0 * closed
    closed_sampling = plan.decode_weights_bytes + plan.kv_cache_copies * plan.kv_cache_bytes
    assert 0.5 * closed_sampling <= sampler["temp_bytes"] <= 2.0 * closed_sampling
