"""The embedded backend: llama.cpp inside the process (llama-cpp-python), the default where no Ollama runs.

llama.cpp keeps the KV cache of the previous prompt and reuses its longest common prefix, so once the system
prompt has been evaluated (``warm``) each turn pays only for its new tokens. The model is not thread-safe:
one generation at a time, guarded by a lock.

Two things make a JSON action fast on 2 cores. The grammar is asked about the sampled token only, as llama.cpp
itself does (voicebot/llm/lazy_grammar.py). And for a flat object of strings (the agent's action) code writes the
keys into the prompt and the model writes only the values (voicebot/llm/staged_json.py): the caller's first word
comes ten decoding steps sooner. Prompts are formatted with the model's own chat template (from the GGUF), the
same text llama-cpp-python's chat completion makes, so the cache is shared by every kind of request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from voicebot.llm.abort import Aborted, AbortSwitch, StopPredicate
from voicebot.llm.base import ChatMessage, LlmError
from voicebot.llm.staged_json import closed, flat_string_fields, key_text, value_grammar


class LlamaCppChatModel:
    abortable = True
    """``stream`` takes ``should_stop``: a predicate that interrupts the request, prompt evaluation included."""

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
        self._formatter = self._chat_formatter()
        self._abort = AbortSwitch(self._llm)
        self.load_s = time.perf_counter() - started

    def _chat_formatter(self) -> Any:
        """The GGUF's chat template, built as llama-cpp-python builds it; None: no template (chat completion's
        own format is used, and actions are generated under the full grammar)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        model = self._llm._model
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        return Jinja2ChatFormatter(template=template, eos_token=model.token_get_text(eos) if eos != -1 else "",
                                   bos_token=model.token_get_text(bos) if bos != -1 else "", stop_token_ids=[eos])

    def _grammar(self, key: str, build) -> Any:
        if key not in self._grammars:
            self._grammars[key] = build()
        return self._grammars[key]

    def _schema_grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        return self._grammar(key, lambda: LlamaGrammar.from_json_schema(key, verbose=False))

    def _tokens(self, messages: Sequence[ChatMessage], prefix: str = "") -> tuple[list[int], list[str]]:
        """The prompt's tokens (with ``prefix`` written after the assistant's turn has begun) and stop strings."""
        result = self._formatter(messages=[m.as_dict() for m in messages])
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        tokens = self._llm.tokenize((result.prompt + prefix).encode("utf-8"), add_bos=not result.added_special,
                                    special=True)
        return tokens, [s for s in stop if s]

    def _complete(self, tokens: list[int], stop: list[str], max_tokens: int, temperature: float,
                  grammar: Any = None) -> Iterator[str]:
        chunks = self._llm.create_completion(prompt=tokens, stream=True, max_tokens=max_tokens, stop=stop or None,
                                             temperature=temperature, grammar=grammar)
        try:
            for chunk in chunks:
                piece = chunk["choices"][0]["text"]
                if piece:
                    yield piece
        finally:
            chunks.close()

    def _staged(self, messages: Sequence[ChatMessage], fields, max_tokens: int,
                temperature: float) -> Iterator[str]:
        """The object value by value (voicebot/llm/staged_json.py). The keys are yielded with the model's first
        piece after them, so the first piece still marks the model's first token."""
        from llama_cpp import LlamaGrammar

        written, pending, left = "", "", max_tokens
        for index, field in enumerate(fields):
            pending += key_text(index, field)
            written += key_text(index, field)
            grammar = self._grammar(f"value:{field.choices}", lambda f=field: LlamaGrammar.from_string(
                value_grammar(f), verbose=False))
            tokens, _ = self._tokens(messages, written)
            value = ""
            pieces = self._complete(tokens, [], left, temperature, grammar)
            try:
                for piece in pieces:
                    left -= 1
                    value += piece
                    yield pending + piece
                    pending = ""
                    if closed(value):
                        break
            finally:
                pieces.close()  # at the closing quote: no decoding step for the end of the grammar
            written += value
            if not closed(value) or left <= 0:
                return  # out of tokens: the object stays incomplete, as a full-grammar generation would
        yield pending + "}"

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None,
               should_stop: StopPredicate | None = None) -> Iterator[str]:
        """The ChatModel's stream; with ``should_stop`` (the after-call analysis) llama.cpp stops as soon as it
        turns true, within a graph node even in a long prompt evaluation, and ``Aborted`` is raised (see
        voicebot/llm/abort.py). Without it (a call's own requests) nothing can interrupt the request."""
        max_tokens = max_tokens or self.max_tokens
        temperature = self.temperature if temperature is None else temperature
        fields = flat_string_fields(json_schema) if json_schema is not None else None
        with self._lock, self._abort.armed(should_stop):
            try:  # llama.cpp's failures (a prompt beyond the context, a failed decode) are the model's: LlmError
                if self._formatter is None:
                    yield from self._chat(messages, json_schema, max_tokens, temperature)
                elif fields is not None:
                    yield from self._staged(messages, fields, max_tokens, temperature)
                else:
                    grammar = self._schema_grammar(json_schema) if json_schema is not None else None
                    tokens, stop = self._tokens(messages)
                    yield from self._complete(tokens, stop, max_tokens, temperature, grammar)
            except (ValueError, RuntimeError) as exc:
                if self._abort.fired:
                    raise Aborted(f"llama.cpp ({self.name}): request stopped by its predicate") from exc
                raise LlmError(f"llama.cpp ({self.name}) failed: {exc}") from exc

    def _chat(self, messages: Sequence[ChatMessage], json_schema: dict[str, Any] | None, max_tokens: int,
              temperature: float) -> Iterator[str]:
        """A model without a chat template in its GGUF: llama-cpp-python's chat completion and its format."""
        kwargs: dict[str, Any] = {}
        if json_schema is not None:
            kwargs["grammar"] = self._schema_grammar(json_schema)
        chunks = self._llm.create_chat_completion(messages=[m.as_dict() for m in messages], stream=True,
                                                  max_tokens=max_tokens, temperature=temperature, **kwargs)
        try:
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
        finally:
            chunks.close()

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text`` (benchmarks report prompt tok/s with it)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def warm(self, system_prompt: str) -> None:
        for _ in self.stream([ChatMessage("system", system_prompt), ChatMessage("user", "Hello.")], max_tokens=1):
            pass
