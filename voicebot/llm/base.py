"""The ChatModel protocol every language-model backend implements, and what they share."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable


class LlmError(Exception):
    """The model could not answer (not loaded, server down, invalid output)."""


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None) -> Iterator[str]:
        """Yield the reply in pieces as the model writes it. With ``json_schema`` the reply is JSON that
        follows the schema (constrained decoding). Closing the iterator stops generation."""
        ...

    def warm(self, system_prompt: str) -> None:
        """Load what is needed and evaluate the system prompt so the next turn only pays for its own text."""
        ...


def complete(model: ChatModel, messages: Sequence[ChatMessage], **kwargs: Any) -> str:
    """The whole reply as one string."""
    return "".join(model.stream(messages, **kwargs))


def complete_json(model: ChatModel, messages: Sequence[ChatMessage], json_schema: dict[str, Any],
                  **kwargs: Any) -> Any:
    """The reply parsed as JSON; LlmError when the model's output is not valid JSON."""
    text = complete(model, messages, json_schema=json_schema, **kwargs)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise LlmError(f"{model.name} returned invalid JSON: {text[:200]!r}") from exc
