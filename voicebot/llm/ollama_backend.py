"""The Ollama backend, for production sites that run `ollama serve` (one model server shared by all workers).

Uses the official ``ollama`` client: /api/chat streamed as NDJSON, ``format`` carrying the JSON schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import ollama

from voicebot.llm.base import ChatMessage, LlmError


class OllamaChatModel:
    def __init__(self, url: str, model: str, *, timeout_s: float = 30.0, keep_alive: str = "30m",
                 temperature: float = 0.2, max_tokens: int = 256):
        self.name = f"ollama:{model}"
        self.url = url
        self.model = model
        self.keep_alive = keep_alive
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._client = ollama.Client(host=url, timeout=timeout_s)

    def _unavailable(self, exc: Exception) -> LlmError:
        return LlmError(f"the Ollama server at {self.url} is not answering ({exc}); start it with `ollama serve`")

    def check(self) -> None:
        """Fail clearly when the server is down or does not have the model."""
        try:
            names = {m.model for m in self._client.list().models}
        except (httpx.HTTPError, ConnectionError) as exc:
            raise self._unavailable(exc) from exc
        if self.model not in names and f"{self.model}:latest" not in names:
            raise LlmError(f"the Ollama server at {self.url} has no model {self.model!r}; "
                           f"run `ollama pull {self.model}` there (it has: {', '.join(sorted(names)) or 'none'})")

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None) -> Iterator[str]:
        options = {"temperature": self.temperature if temperature is None else temperature,
                   "num_predict": max_tokens or self.max_tokens}
        try:
            parts = self._client.chat(model=self.model, messages=[m.as_dict() for m in messages], stream=True,
                                      format=json_schema, options=options, keep_alive=self.keep_alive)
            for part in parts:
                if part.message.content:
                    yield part.message.content
        except ollama.ResponseError as exc:
            raise LlmError(f"Ollama answered {exc.status_code}: {exc.error}") from exc
        except (httpx.HTTPError, ConnectionError) as exc:
            raise self._unavailable(exc) from exc

    def warm(self, system_prompt: str) -> None:
        self.check()
        for _ in self.stream([ChatMessage("system", system_prompt), ChatMessage("user", "Hello.")], max_tokens=1):
            pass
