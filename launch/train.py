"""The one entry point: `python launch/train.py --config=configs/<recipe>.py --workdir=DIR`.

Any config field can be overridden: `--config.optim.learning_rate=3e-6`. A field that may be
None (a `placeholder(...)` in the recipe, e.g. `model.preset`) is set back to None with
`--config.model.preset=None` (also `none`, `null` or an empty value). The recipe's
`config.trainer` picks the training loop. User errors (an unknown or mistyped key, a missing
model directory, a dataset without a needed field, a diverged loss) end the run with one line
on stderr naming what to fix, and exit status 2 (1 for a diverged loss).
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # recipes import `configs.base`
    sys.path.insert(0, REPO)

from absl import app, flags  # noqa: E402
from ml_collections import ConfigDict, FieldReference, config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe file (configs/<recipe>.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics, export. "
                               "A run started again on the same workdir resumes.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the recipe's per-device memory plan on its "
                             "mesh (no weights read, nothing trained) and exit; see "
                             "docs/memory_plan.md.")
_DRY_RUN_DEVICES = flags.DEFINE_integer("dry_run_devices", 0, "With --dry_run: simulate this many "
                                        "CPU devices for the mesh (0: the real devices).")
_DRY_RUN_DEVICE = flags.DEFINE_string("dry_run_device", "tpu-v5p", "With --dry_run: the device "
                                      "whose memory the plan is checked against: tpu-v5p | "
                                      "tpu-v6e | h100-80gb | h200.")
_DRY_RUN_COMPILE = flags.DEFINE_bool("dry_run_compile", False, "With --dry_run: also compile the "
                                     "train step and sampler program with abstract inputs and "
                                     "report XLA's memory analysis (slow for large models).")


def _fail(message: str, status: int = 2) -> None:
    message = " ".join(str(message).split())  # one line, whatever the exception looked like
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    os._exit(status)  # no atexit handlers: nothing half-written gets flushed as if it was fine


NONE_VALUES = ("none", "null", "")  # `--config.<key>=None` sets a placeholder field to None


def load_recipe(config_arg: str) -> ConfigDict:
    """The recipe's config, loaded the way `--config=path[:arg]` names it (our own importlib
    loading: what absl's config flag does, without its private helpers)."""
    path, arg = config_arg, None
    if not os.path.exists(path) and ":" in path:
        path, arg = path.rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("_jaxreason_recipe", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"recipe file {path!r} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()


def _config_arg(argv: list[str]) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)


def _recipe(argv: list[str]) -> ConfigDict | None:
    config_file = _config_arg(argv)
    if config_file is None:
        return None
    try:
        return load_recipe(config_file)
    except Exception:  # the file itself is broken: absl's own message says how
        return None


def _field(config: Any, key: str) -> tuple[bool, Any]:
    """(whether `key` exists, its raw value with FieldReferences kept)."""
    node: Any = config.to_dict(preserve_field_references=True)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def split_none_overrides(argv: list[str], recipe: ConfigDict | None
                         ) -> tuple[list[str], list[str]]:
    """(argv without the `--config.<key>=None` of placeholder fields, those keys).

    ml_collections parses `None` into the string "None" for a `placeholder(str)` field and
    fails on it for a `placeholder(int)`; a field that may be None should accept it. Only the
    last value given for a key counts."""
    if recipe is None:
        return argv, []
    last: dict[str, int] = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--config.") and "=" in arg:
            last[arg[len("--config."):].split("=", 1)[0]] = i
    keep, nulls = [], []
    for i, arg in enumerate(argv):
        if arg.startswith("--config.") and "=" in arg:
            key, value = arg[len("--config."):].split("=", 1)
            exists, raw = _field(recipe, key)
            nullable = exists and (raw is None or isinstance(raw, FieldReference))
            if nullable and value.strip().lower() in NONE_VALUES:
                if last[key] == i:
                    nulls.append(key)
                continue
        keep.append(arg)
    return keep, nulls


def split_stage_overrides(argv: list[str], recipe: ConfigDict | None
                          ) -> tuple[list[str], list[tuple[str, Any]]]:
    """(argv without the `--config.stages.<stage>.<key>=value` whose key the recipe's stage
    does not list but the base config has, those (key, parsed value) pairs).

    A stage's overrides are merged over the base config, so any base key is a valid stage
    override; absl's config flags can only set keys the recipe already holds. Such overrides
    are applied after parsing instead, with the value parsed by the base field's type."""
    if recipe is None or "stages" not in recipe:
        return argv, []
    from configs import base

    defaults = base.get_config()
    keep, later = [], []
    for arg in argv:
        if arg.startswith("--config.stages.") and "=" in arg:
            key, value = arg[len("--config."):].split("=", 1)
            parts = key.split(".")
            in_recipe, _ = _field(recipe, key)
            in_base, default = _field(defaults, ".".join(parts[2:]))
            if (len(parts) > 3 and parts[1] in recipe.stages and not in_recipe and in_base
                    and not isinstance(default, dict)):
                later.append((key, _parse_like(default, value, key)))
                continue
        keep.append(arg)
    return keep, later


def _parse_like(default: Any, value: str, key: str) -> Any:
    """`value` as the type of the base config's `default` (absl's own rule for overrides)."""
    if value.strip().lower() in NONE_VALUES:
        return None
    kind = default.get_type() if isinstance(default, FieldReference) else type(default)
    try:
        if kind is bool:
            if value.strip().lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.strip().lower() in ("true", "1")
        if kind in (int, float):
            return kind(value)
        if kind in (tuple, list):
            return kind(ast.literal_eval(value))
    except (ValueError, SyntaxError):
        _fail(f"--config.{key}: cannot read {value!r} as {kind.__name__}")
    return value


def _set_stage_key(config: ConfigDict, key: str, value: Any) -> None:
    """Set `stages.<stage>.<path>`, creating the sections the stage does not list yet."""
    *parents, name = key.split(".")
    with config.unlocked():  # absl locks the recipe after parsing
        node = config
        for part in parents:
            if part not in node:
                node[part] = ConfigDict()
            node = node[part]
        node[name] = value


def _set_none(config: ConfigDict, key: str) -> None:
    *parents, name = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[name] = None


def _override_problem(argv: list[str]) -> str | None:
    """Which `--config.<key>=value` is wrong, found by walking the recipe's keys."""
    config = _recipe(argv)
    if config is None:
        return None
    for arg in argv:
        if not arg.startswith("--config.") or arg.startswith("--config=") :
            continue
        key = arg[len("--config."):].split("=", 1)[0]
        node = config
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, ConfigDict) or part not in node:
                where = ".".join(parts[:i]) or "config"
                known = sorted(node.keys()) if isinstance(node, ConfigDict) else []
                return f"--config.{key}: unknown config key {part!r} in {where}; known keys: " \
                       f"{', '.join(known)}"
            node = node[part]
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl parsing with one-line errors instead of tracebacks."""
    recipe = _recipe(argv)  # loaded once for both splits (None: absl reports the file)
    argv, stage_keys = split_stage_overrides(argv, recipe)
    if stage_keys:  # config_flags also reads sys.argv for the overrides it walks
        sys.argv = [a for a in sys.argv if not any(a.startswith(f"--config.{k}=")
                                                   for k, _ in stage_keys)]
    argv, nulls = split_none_overrides(argv, recipe)
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        _fail(_override_problem(argv) or str(e))
    except Exception as e:  # config_flags raises plain KeyError / AttributeError for bad keys
        _fail(_override_problem(argv) or f"{type(e).__name__}: {e}")
    if flags.FLAGS["config"].value is None:
        _fail("--config is required (e.g. --config=configs/sft_countdown_tiny.py)")
    if not isinstance(flags.FLAGS["config"].value, ConfigDict):  # e.g. the file does not exist
        try:
            flags.FLAGS["config"].value.get_config  # re-raises the loading error
        except Exception as e:
            _fail(f"--config: {e}")
        _fail("--config: could not load the recipe file")
    if not _WORKDIR.value and not flags.FLAGS["dry_run"].value:
        _fail("--workdir is required")
    for key in nulls:
        _set_none(flags.FLAGS["config"].value, key)
    for key, value in stage_keys:
        _set_stage_key(flags.FLAGS["config"].value, key, value)
    return rest


def simulate_devices(count: int) -> None:
    """`count` CPU devices for a dry run's mesh (set before JAX starts)."""
    if "jax" in sys.modules:
        _fail("--dry_run_devices: JAX was imported before the flag could take effect")
    os.environ["JAX_PLATFORMS"] = "cpu"
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split()
            if not f.startswith("--xla_force_host_platform_device_count")]
    os.environ["XLA_FLAGS"] = " ".join(kept + [f"--xla_force_host_platform_device_count={count}"])


def dry_run(config: ConfigDict) -> None:
    """`--dry_run`: the memory plan (jaxreason.train.dry_run), one-line errors."""
    if _DRY_RUN_DEVICES.value > 0:
        simulate_devices(_DRY_RUN_DEVICES.value)
    from jaxreason.train.dry_run import dry_run as plan
    from jaxreason.train.errors import user_errors

    try:
        plan(config, _DRY_RUN_DEVICE.value, compile_programs=_DRY_RUN_COMPILE.value)
    except user_errors() as e:
        _fail(str(e))


def main(argv: list[str]) -> None:
    del argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)
    for noisy in ("absl", "jax", "orbax", "grain"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if _DRY_RUN.value:
        return dry_run(_CONFIG.value)
    from jaxreason.train import get_trainer, trainer_names
    from jaxreason.train.errors import NonFiniteLossError, user_errors

    config = _CONFIG.value
    try:
        trainer = get_trainer(config.trainer)
    except KeyError:
        _fail(f"trainer: {config.trainer!r} is not one of {trainer_names()}")
    try:
        summary = trainer(config, os.path.abspath(_WORKDIR.value))
    except user_errors() as e:
        _fail(str(e), 1 if isinstance(e, NonFiniteLossError) else 2)
    logging.info("done: %s", _brief(summary))


def _brief(summary: dict) -> dict:
    """The summary without per-step training metrics (a pipeline's: per stage)."""
    return {k: _brief(v) if isinstance(v, dict) and "status" in v else v
            for k, v in summary.items() if k != "train"}


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
