"""Errors a training run reports to its user as one line (the launcher prints them without a
traceback): bad config values, missing files, malformed data, a diverged loss."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key (`train.batch_size`)."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; nothing after the last good checkpoint was saved."""

    def __init__(self, step: int, metrics: dict[str, float], last_checkpoint: int | None) -> None:
        self.step = step
        where = (f"the last good checkpoint (step {last_checkpoint}) is kept"
                 if last_checkpoint is not None else "no checkpoint was saved")
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())
                          if k in ("loss", "grad_norm", "learning_rate"))
        super().__init__(f"non-finite loss or gradient at step {step} ({shown}); stopping; "
                         f"{where}")


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is the whole story (no traceback needed)."""
    from jaxreason.prompting import RecordError
    from jaxreason.data.readers import DataFormatError
    from jaxreason.model.config import ConfigError as ModelConfigError
    from jaxreason.model.hf_checkpoint import CheckpointError

    return (ConfigError, NonFiniteLossError, FileNotFoundError, DataFormatError, RecordError,
            ModelConfigError, CheckpointError)
