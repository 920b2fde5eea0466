"""PPO's config checks: a bad KL-controller setting is one error naming its key, and the
adaptive controller puts its coefficient in the train state (the fixed one does not)."""

import pytest

import tiny_ppo_config
from jaxreason.algorithms.ppo import ACTOR_CRITIC, KL_COEF, PPO
from jaxreason.train.errors import ConfigError


def checked(tmp_path, **ppo):
    config = tiny_ppo_config.get_config()
    config.data.train = str(tmp_path / "prompts.jsonl")
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    for key, value in ppo.items():
        config.ppo[key] = value
    algorithm = PPO()
    algorithm.check_config(config)
    return algorithm


@pytest.mark.parametrize("edit,key", [
    (dict(kl_controller="pid"), "ppo.kl_controller"),
    (dict(kl_controller="adaptive", kl_coef=0.1, kl_target=0.0), "ppo.kl_target"),
    (dict(kl_controller="adaptive", kl_coef=0.1, kl_horizon=0), "ppo.kl_horizon"),
    (dict(kl_controller="adaptive", kl_coef=0.0), "ppo.kl_coef"),
])
def test_bad_kl_controller_settings_name_the_key(tmp_path, edit, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        checked(tmp_path, **edit)


def test_only_the_adaptive_controller_keeps_state(tmp_path):
    assert checked(tmp_path).param_tree == ACTOR_CRITIC and ACTOR_CRITIC.extra is None
    tree = checked(tmp_path, kl_controller="adaptive", kl_coef=0.02).param_tree
    assert float(tree.extra()[KL_COEF]) == pytest.approx(0.02)
    assert tree.shapes is ACTOR_CRITIC.shapes and tree.init is ACTOR_CRITIC.init
