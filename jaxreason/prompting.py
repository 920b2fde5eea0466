"""How a prompt becomes the token ids a model is trained on and sampled from.

Training (SFT rows), online RL (GRPO prompts) and evaluation must all show the model the same
context for the same record, or a model learns on one prompt and is graded on another. So the
rendering lives here, beside the tokenizer, in one place: plain text (`bos + prompt`) or the
tokenizer's chat template (messages + the assistant header). Pure Python, no JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class RecordError(ValueError):
    """A record that cannot become a prompt or training example (the message names field and
    record)."""


@dataclasses.dataclass(frozen=True)
class PromptFormat:
    """chat: render with the tokenizer's chat template (the prompt as user turn, or a list of
    `{"role", "content"}` messages); otherwise plain text `bos + prompt`.
    add_bos: plain format only (a chat template places its own specials).
    prompt_field: the record field holding the prompt (records without a task)."""

    chat: bool = False
    add_bos: bool = True
    prompt_field: str = "prompt"


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` without specials (the format adds them)."""
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def chat_messages(prompt: Any) -> list[dict[str, Any]]:
    """A prompt as chat messages: a message list as is, anything else as one user turn."""
    if isinstance(prompt, (list, tuple)):
        return list(prompt)
    return [{"role": "user", "content": str(prompt)}]


def chat_parts(tokenizer: Any, prompt: Any, completion: str) -> tuple[str, str]:
    """(prompt text incl. the assistant header, completion text incl. the end of turn)."""
    messages = chat_messages(prompt)
    prompt_text = tokenizer.apply_chat_template(messages, tokenize=False,
                                                add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        messages + [{"role": "assistant", "content": completion}], tokenize=False)
    if full.startswith(prompt_text):
        return prompt_text, full[len(prompt_text):]
    return prompt_text, completion  # templates that rewrite earlier turns: keep the raw text


def prompt_token_ids(prompt: Any, tokenizer: Any, fmt: PromptFormat) -> list[int]:
    """The prompt's tokens exactly as training sees them (pass these ids to the sampler so
    generation continues from the same context). `fmt` needs `.chat` and `.add_bos`."""
    if fmt.chat:
        return encode(tokenizer, tokenizer.apply_chat_template(
            chat_messages(prompt), tokenize=False, add_generation_prompt=True))
    if not isinstance(prompt, str):
        raise RecordError("the prompt is not a string; set data.chat=True for chat-message "
                          "prompts")
    ids = encode(tokenizer, prompt)
    if fmt.add_bos and tokenizer.bos_token_id is not None:
        ids.insert(0, tokenizer.bos_token_id)
    return ids


def record_prompt(record: Any, task: Any, fmt: PromptFormat) -> Any:
    """The prompt of a record: the task's rendering of it, or the record's prompt field."""
    if task is not None:
        return task.prompt(record, chat=fmt.chat)
    return record[fmt.prompt_field]
