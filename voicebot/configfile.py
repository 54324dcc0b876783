"""Reading the admin's YAML safely, with the line of every key, and reporting problems as ``file:line: field``.

Safe means more than the safe loader (tags such as ``!!python/object`` are errors, never code):
- **Aliases are bounded.** A 2 KB "billion laughs" file of nested anchors and aliases expands to billions of
  values; walking it for line numbers once took 2.4 GB in 20 s. The composed tree's expanded size is counted
  without expanding it (each distinct node once, memoised), and a file that would expand past
  ``MAX_VALUES`` is refused before anything walks it. Ordinary anchors and aliases still work.
- **Duplicate keys are errors**, with both lines: YAML keeps the last one silently, so a second ``sip:`` section
  would quietly replace the first.
- **Files over ``MAX_BYTES``** are refused: no admin's config is that large.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

MAX_BYTES = 1 << 20
MAX_VALUES = 100_000


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that must not start the bot; ``problems`` lists every error found."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """How many values ``node`` stands for once every alias is expanded, counting each distinct node once
    (memoised), and stopping as soon as ``limit`` is passed."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = limit + 1  # a node that contains itself (a recursive alias) is over any limit
    total = 1
    if isinstance(node, yaml.MappingNode):
        children: Iterator[yaml.Node] = (n for pair in node.value for n in pair)
    elif isinstance(node, yaml.SequenceNode):
        children = iter(node.value)
    else:
        children = iter(())
    for child in children:
        total += _expanded_size(child, memo, limit)
        if total > limit:
            break
    memo[key] = total
    return total


def _duplicates(node: yaml.Node, name: str, path: tuple = (), seen_nodes: set[int] | None = None
                ) -> list[ConfigProblem]:
    """Every key given twice in one mapping, with both lines (each distinct node visited once)."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
    problems: list[ConfigProblem] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first:
                problems.append(ConfigProblem(name, line, ".".join(map(str, path + (key,))),
                                              f"duplicate key (first given at line {first[key]}); "
                                              "YAML would keep only the last one"))
            else:
                first[key] = line
            problems += _duplicates(value_node, name, path + (key,), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicates(item, name, path + (index,), seen_nodes)
    return problems


def _key_lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each dotted path in a composed YAML tree to its 1-based line (bounded: see ``_expanded_size``)."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _key_lines(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[path + (index,)] = item.start_mark.line + 1
            _key_lines(item, path + (index,), out)
    return out


def line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def read_yaml_mapping(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    """The file's top-level mapping and the line of every key; ConfigError for anything unsafe or malformed."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError([ConfigProblem(name, None, "", f"the file is {size} bytes; a config over "
                                                             f"{MAX_BYTES} bytes is refused")])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"cannot read the file: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"not UTF-8 text: {exc.reason}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node, {}, MAX_VALUES) > MAX_VALUES:
            raise ConfigError([ConfigProblem(name, None, "", f"the YAML expands to more than {MAX_VALUES} values "
                                                             "(anchors and aliases nested too deep?): refused")])
        problems = _duplicates(node, name) if node is not None else []
        if problems:
            raise ConfigError(problems)
        loader = yaml.SafeLoader("")
        try:
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError([ConfigProblem(name, line, "", f"invalid YAML: {message}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"invalid YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise ConfigError([ConfigProblem(name, None, "", "the YAML is nested too deep: refused")]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(name, 1, "", "the top level must be a mapping of sections")])
    return data, (_key_lines(node) if node is not None else {})


def validation_problems(exc: ValidationError, name: str, lines: dict[tuple, int]) -> list[ConfigProblem]:
    """Pydantic's errors as ``file:line: field: message``."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(part) for part in loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif ("input" in err and err["type"] not in ("missing", "removed_key")
              and not isinstance(err["input"], (dict, list))):
            message = f"{message} (got {err['input']!r})"
        problems.append(ConfigProblem(name, line_for(lines, loc), field, message))
    return problems
