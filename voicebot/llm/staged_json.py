"""JSON actions written value by value: the model writes only the values, code writes the keys.

An action such as ``{"action": "reply", "text": "Sure, ..."}`` is ten tokens of punctuation and keys before the
first word a caller can hear, and every one of them costs the embedded model a full decoding step (~0.1 s on 2
cores) although the grammar allows exactly one spelling. For a flat object whose properties are strings or enums
of strings, all required and in order, the keys are known in advance: the backend puts ``{"action": "`` into the
prompt (evaluated in one batch with the rest of the prompt), lets the model write the value under a small grammar
that ends at the closing quote, appends ``", "text": "`` and lets it write the next value. The result is the same
JSON the full grammar allows, spaced as the prompt's examples are.

Anything else (nested objects, numbers, optional keys) returns None from ``flat_string_fields`` and is generated
under the full JSON-schema grammar as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'


@dataclass(frozen=True)
class Field:
    name: str
    choices: tuple[str, ...] | None  # an enum's values; None: any string


def flat_string_fields(schema: dict[str, Any]) -> list[Field] | None:
    """The fields of a flat object schema whose values are all strings (or enums of strings), every one required
    and in the order of ``properties``; None for any other schema."""
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict) or not props:
        return None
    if schema.get("additionalProperties") is not False or list(schema.get("required") or []) != list(props):
        return None
    fields = []
    for name, prop in props.items():
        if not isinstance(prop, dict):
            return None
        if "enum" in prop and set(prop) <= {"enum", "type"}:
            values = prop["enum"]
            if not values or not all(isinstance(v, str) and v and '"' not in v and "\\" not in v for v in values):
                return None
            fields.append(Field(name, tuple(values)))
        elif prop == {"type": "string"}:
            fields.append(Field(name, None))
        else:
            return None
    return fields


def value_grammar(field: Field) -> str:
    """GBNF for one value and its closing quote (the opening quote is already in the prompt)."""
    if field.choices is not None:
        return "root ::= (" + " | ".join(json.dumps(v) for v in field.choices) + ') "\\""\n'
    return f'root ::= char* "\\""\nchar ::= {CHAR}\n'


def key_text(index: int, field: Field) -> str:
    """What code writes before the field's value: ``{"action": "`` first, then ``, "text": "`` (the model's value
    grammar wrote the closing quote of the value before)."""
    return ("{" if index == 0 else ", ") + json.dumps(field.name) + ': "'


def closed(value: str) -> bool:
    """The value so far ends with its closing quote (one not escaped by a backslash)."""
    if not value.endswith('"'):
        return False
    backslashes = len(value) - 1 - len(value[:-1].rstrip("\\"))
    return backslashes % 2 == 0
