"""The embedded backend: llama.cpp inside the process (llama-cpp-python), the default where no Ollama runs.

llama.cpp keeps the KV cache of the previous prompt and reuses its longest common prefix, so once the system
prompt has been evaluated (``warm``) each turn pays only for its new tokens. The model is not thread-safe:
one generation at a time, guarded by a lock. Constrained (JSON) generations ask the grammar about the sampled
token only, as llama.cpp itself does (voicebot/llm/lazy_grammar.py): three times the speed on 2 cores.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from voicebot.llm.base import ChatMessage, LlmError


class LlamaCppChatModel:
    def __init__(self, model_path: str | Path, *, name: str = "embedded", context_tokens: int = 4096,
                 threads: int = 2, temperature: float = 0.2, max_tokens: int = 256, seed: int = 7):
        from llama_cpp import Llama  # heavy import, only when this backend is chosen

        from voicebot.llm.lazy_grammar import lazy_grammar_llama

        self.name = name
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            self._llm = lazy_grammar_llama(Llama)(model_path=str(model_path), n_ctx=context_tokens, n_threads=threads,
                              n_threads_batch=threads, n_batch=512, seed=seed, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise LlmError(f"llama.cpp could not load {model_path}: {exc}") from exc
        self.load_s = time.perf_counter() - started

    def _grammar(self, schema: dict[str, Any]):
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None) -> Iterator[str]:
        kwargs: dict[str, Any] = {}
        if json_schema is not None:
            kwargs["grammar"] = self._grammar(json_schema)
        with self._lock:
            try:  # llama.cpp's failures (a prompt beyond the context, a failed decode) are the model's: LlmError
                chunks = self._llm.create_chat_completion(
                    messages=[m.as_dict() for m in messages],
                    stream=True,
                    max_tokens=max_tokens or self.max_tokens,
                    temperature=self.temperature if temperature is None else temperature,
                    **kwargs,
                )
                try:
                    for chunk in chunks:
                        piece = chunk["choices"][0]["delta"].get("content")
                        if piece:
                            yield piece
                finally:
                    chunks.close()
            except (ValueError, RuntimeError) as exc:
                raise LlmError(f"llama.cpp ({self.name}) failed: {exc}") from exc

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text`` (benchmarks report prompt tok/s with it)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def warm(self, system_prompt: str) -> None:
        for _ in self.stream([ChatMessage("system", system_prompt), ChatMessage("user", "Hello.")], max_tokens=1):
            pass
