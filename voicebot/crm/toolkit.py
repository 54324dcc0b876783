"""Tools for the language model, derived from plain typed Python functions: one source of truth.

A tool is a function ``fn(context, arg: type = default, ...)`` with a docstring. Its name is the function's
name, its description the docstring's text before ``Args:``, and its JSON schema comes from a pydantic model
built from the signature (types, defaults) and the ``Args:`` lines (descriptions). The same model validates the
arguments the model sends, so the prompt and the check can never disagree.

``ToolRegistry.call`` never raises for anything the model can get wrong: an unknown tool, bad arguments, a
locked tool, a missing record all come back as ``{"ok": false, "error": code, "message": ...}``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import re
import sqlite3
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, ValidationError, create_model

from voicebot.crm.models import NotFound, SlotTaken
from voicebot.strict import StrictModel

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ToolError:
    """A refusal a tool returns (not raises): ``code`` for code, ``message`` for the model to rephrase."""

    code: str
    message: str


def _docstring(fn: Callable) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into the summary and ``{arg: description}`` from its ``Args:`` block."""
    doc = inspect.getdoc(fn) or ""
    summary, _, rest = doc.partition("\nArgs:\n")
    args: dict[str, str] = {}
    current = None
    for line in rest.splitlines():
        m = re.match(r"\s{2,}(\w+):\s*(.*)", line)
        if m and (current is None or len(line) - len(line.lstrip()) <= 4):
            current = m.group(1)
            args[current] = m.group(2).strip()
        elif current and line.strip():
            args[current] += " " + line.strip()
        elif not line.strip():
            current = None
    return " ".join(summary.split()), args


def _simplify(schema: Any) -> Any:
    """Shorter JSON schema for a small model's prompt: no titles, ``X | None`` shown as ``X``, no null defaults.
    (Validation still uses the full pydantic model, which accepts the nulls.)"""
    if isinstance(schema, list):
        return [_simplify(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _simplify(prop) for name, prop in value.items()}
        else:
            out[key] = _simplify(value)
    options = out.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        inner = next(option for option in options if option != {"type": "null"})
        out.pop("anyOf")
        out = inner | out
    return out


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    arguments: type[BaseModel]
    requires_verification: bool

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, requires_verification: bool = False) -> Tool:
        summary, arg_docs = _docstring(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        params = list(inspect.signature(fn).parameters.values())[1:]  # the first is the call's context
        fields = {}
        for p in params:
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (hints[p.name], Field(default, description=arg_docs.get(p.name)))
        model = create_model(f"{fn.__name__}_arguments", __base__=StrictModel, **fields)
        return cls(fn.__name__, summary, fn, model, requires_verification)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": _simplify(self.arguments.model_json_schema())}


def to_jsonable(value: Any, hidden: frozenset[str] = frozenset()) -> Any:
    """Dataclasses, dates, Decimals and enums as JSON values; None fields and ``hidden`` field names dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), hidden) for f in dataclasses.fields(value)
                if f.name not in hidden and getattr(value, f.name) is not None}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, hidden) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, hidden) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": code, "message": message, **extra}


class ToolRegistry:
    """The tools one dialogue offers. ``specs()`` for the prompt, ``call()`` for what the model asked."""

    def __init__(self, hidden_fields: frozenset[str] = frozenset()):
        self._tools: dict[str, Tool] = {}
        self.hidden_fields = hidden_fields

    def tool(self, *, requires_verification: bool = False) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            tool = Tool.from_function(fn, requires_verification=requires_verification)
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name!r} is registered twice")
            self._tools[tool.name] = tool
            return fn
        return register

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self._tools.values()]

    def call(self, name: str, args: dict[str, Any] | str | None, context: Any) -> dict[str, Any]:
        """Run tool ``name`` with the model's ``args`` (a dict or a JSON string) for the call ``context``.

        Returns ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": code, "message": ...}`` with code one
        of unknown_tool, invalid_arguments, verification_required, locked_out, not_found, slot_taken,
        unavailable, or a tool's own ToolError code. Locked tools refuse before their arguments are looked at.
        """
        tool = self._tools.get(name)
        if tool is None:
            return _error("unknown_tool", f"There is no tool {name!r}. Tools: {', '.join(self._tools)}.")
        if tool.requires_verification and getattr(context, "verified_customer", None) is None:
            verification = getattr(context, "verification", None)
            if verification is not None and verification.locked:
                return _error("locked_out", "Verification failed too many times on this call; account details "
                                            "cannot be shared. Offer to transfer the caller to a person.")
            return _error("verification_required", "Verify the caller first: ask for their PIN, or their date of "
                                                   "birth and postcode, and call verify_caller.")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                return _error("invalid_arguments", f"arguments are not JSON: {exc.msg}")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return _error("invalid_arguments", "arguments must be a JSON object")
        try:
            parsed = tool.arguments.model_validate(args)
        except ValidationError as exc:
            problems = [{"field": ".".join(str(p) for p in e["loc"]) or "(arguments)", "message": e["msg"]}
                        for e in exc.errors()]
            text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            return _error("invalid_arguments", f"bad arguments for {name}: {text}", problems=problems)
        try:
            result = tool.fn(context, **{field: getattr(parsed, field) for field in type(parsed).model_fields})
        except sqlite3.Error:
            log.exception("tool %s failed on the database", name)
            return _error("unavailable", "The customer database is not available right now. Offer a callback or "
                                         "a transfer to a person.")
        if isinstance(result, NotFound):
            return _error("not_found", f"Found {result.message}.")
        if isinstance(result, SlotTaken):
            return _error("slot_taken", f"Slot {result.slot_id} cannot be booked ({result.reason}); "
                                        "offer another free slot.")
        if isinstance(result, ToolError):
            return _error(result.code, result.message)
        return {"ok": True, "result": to_jsonable(result, self.hidden_fields)}
