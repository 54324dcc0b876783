"""The admin's knowledge files, read and checked: Markdown entries, ``hours.yaml`` and ``prices.yaml``.

The knowledge folder (``knowledge.dir``) belongs to the admin, who edits it with any text editor while the bot
runs. So reading it follows the config's rules (every problem is ``file:line: message``, YAML through the same
safe reader) with one difference: a broken knowledge file never stops the bot. Each problem is reported
(``voicebot kb check``, the log at start and at every reload) and what it spoils is left out: a bad Markdown
entry drops that entry, a bad ``hours.yaml`` or ``prices.yaml`` drops that file. The rest still answers.

Markdown (``*.md``, any name, read in name order): every heading with text under it is one entry. Its title
is the question callers ask ("What is your return policy?"), the text is the answer, and an optional line
``tags: returns, refunds`` anywhere in the text adds search words that are not spoken. A heading with no text
before a deeper heading is a topic: it is added to the search text of the entries under it. A heading with
no text at all (none under it and no deeper heading) is an error, as is the same title twice.

An entry may also carry ``asked: <another way to ask it>`` lines (``also asked as:`` works too), one phrasing a
line, as many as the admin likes: the way callers really put the question ("Can I collect it myself?" for "Can
I pick up my order?"). Each is matched as the title is (question to question, the sharpest match e5 makes), so
an admin who reads a question on the "Unanswered" list can add it to the entry that answers it. Not spoken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import (
    ValidationError,
)

from voicebot.configfile import (
    ConfigError,
    ConfigProblem,
    read_yaml_mapping,
    validation_problems,
)
from voicebot.knowledge.tables import (  # noqa: F401 - re-exported: part of the files' interface
    WEEKDAYS, Discount, Holiday, HoursFile, PriceItem, PricesFile, parse_spans)
from voicebot.strict import StrictModel

MAX_MARKDOWN_BYTES = 1 << 20
HOURS_FILE = "hours.yaml"
PRICES_FILE = "prices.yaml"

Problem = ConfigProblem
"""One problem in a knowledge file; ``str()`` is ``file:line: message`` (``file:line: field: message`` in YAML)."""

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TAGS = re.compile(r"^\s*tags\s*:\s*(.*)$", re.IGNORECASE)
_ASKED = re.compile(r"^\s*(?:also\s+asked\s+as|asked)\s*:\s*(.*)$", re.IGNORECASE)
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Entry:
    """One question and its answer, from a Markdown heading and the text under it."""

    id: str  # "<file stem>/<title slug>": stable while the title stays the same
    title: str
    answer: str  # the text under the heading as written (Markdown marks kept), tags line removed
    tags: tuple[str, ...]
    topic: str  # the headings above it, joined ("Orders and delivery"); searched, never spoken
    file: str
    line: int
    asked: tuple[str, ...] = ()  # other ways callers ask it ("asked:" lines); searched like the title, never spoken

    @property
    def search_text(self) -> str:
        """What retrieval reads: the title, topic and tags (words callers use) before the answer."""
        parts = [self.title, self.topic, ", ".join(self.tags), plain_text(self.answer)]
        return ". ".join(p for p in parts if p)


def slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.casefold()).strip("-")[:60] or "entry"


def plain_text(markdown: str) -> str:
    """Markdown as it would be read aloud: list marks, emphasis, links and code marks dropped; lines joined
    into sentences (a list item without a full stop gets one)."""
    lines = []
    for raw in markdown.splitlines():
        line = raw.strip()
        if not line or _FENCE.match(line):
            continue
        item = re.match(r"^(?:[-*+]|\d+[.)])\s+(.*)$", line)
        if item:
            line = item.group(1)
            if not re.search(r"[.!?:;]$", line):
                line += "."
        lines.append(line)
    text = " ".join(lines)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [label](url) -> label
    text = re.sub(r"(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1", r"\2", text)
    return re.sub(r"\s+", " ", text).strip()


def read_markdown(path: Path, name: str | None = None) -> tuple[list[Entry], list[Problem]]:
    """The entries of one Markdown file and its problems. An entry with a problem is left out; a file that
    cannot be read gives one problem and no entries."""
    name = name or str(path)
    try:
        if path.stat().st_size > MAX_MARKDOWN_BYTES:
            return [], [Problem(name, None, "", f"the file is over {MAX_MARKDOWN_BYTES} bytes: skipped")]
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [], [Problem(name, None, "", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return [], [Problem(name, None, "", f"not UTF-8 text ({exc.reason}): skipped")]

    sections: list[tuple[int, str, int, list[str]]] = []  # (level, title, line, body lines)
    preamble: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            sections.append((len(heading.group(1)), heading.group(2).strip(), number, []))
        elif sections:
            sections[-1][3].append(line)
        elif line.strip():
            preamble.append((number, line))

    problems: list[Problem] = []
    if preamble:
        problems.append(Problem(name, preamble[0][0], "", "text before the first heading belongs to no entry: "
                                                          "put a question heading (## ...) above it"))
    entries: list[Entry] = []
    stem = path.stem
    topics: list[tuple[int, str]] = []  # open topic headings, outermost first
    seen: dict[str, int] = {}
    for index, (level, title, line, body) in enumerate(sections):
        topics = [(lv, t) for lv, t in topics if lv < level]
        has_text = any(b.strip() for b in body)
        deeper_follows = index + 1 < len(sections) and sections[index + 1][0] > level
        if not title:
            problems.append(Problem(name, line, "", "a heading without a title"))
            continue
        if not has_text:
            if deeper_follows:
                topics.append((level, title))
            else:
                problems.append(Problem(name, line, "", f"{title!r} has no answer under it: write the answer "
                                                        "below the heading, or remove the heading"))
            continue
        tags: list[str] = []
        asked: list[str] = []
        kept: list[str] = []
        for offset, b in enumerate(body, 1):
            asked_line = _ASKED.match(b)
            tag_line = None if asked_line else _TAGS.match(b)
            if asked_line:
                if asked_line.group(1).strip():
                    asked.append(asked_line.group(1).strip())
                else:
                    problems.append(Problem(name, line + offset, "", "an empty asked: line (write asked: another "
                                                                      "way a caller puts the question)"))
            elif tag_line:
                found = [t.strip() for t in tag_line.group(1).split(",") if t.strip()]
                if not found:
                    problems.append(Problem(name, line + offset, "", "an empty tags: line (write tags: a, b)"))
                tags += found
            else:
                kept.append(b)
        answer = "\n".join(kept).strip()
        if not answer:
            problems.append(Problem(name, line, "", f"{title!r} has tags but no answer under it"))
            continue
        key = title.casefold()
        if key in seen:
            problems.append(Problem(name, line, "", f"{title!r} is already an entry at line {seen[key]} of "
                                                    "this file: merge the two answers"))
            continue
        seen[key] = line
        entries.append(Entry(f"{stem}/{slug(title)}", title, answer, tuple(tags),
                             " / ".join(t for _, t in topics), name, line, tuple(asked)))
    return entries, problems


# -- hours.yaml ------------------------------------------------------------------------------------------------



def read_yaml_file(path: Path, model: type[StrictModel], name: str | None = None
                   ) -> tuple[StrictModel | None, list[Problem]]:
    """One YAML knowledge file, validated; ``(None, problems)`` when it must be skipped."""
    name = name or str(path)
    try:
        data, lines = read_yaml_mapping(path)
    except ConfigError as exc:
        return None, [Problem(name, p.line, p.field, p.message) for p in exc.problems]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, validation_problems(exc, name, lines)


# -- the whole folder ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KnowledgeFiles:
    """Everything read from the folder: what is usable, and every problem found on the way."""

    folder: Path
    entries: tuple[Entry, ...] = ()
    hours: HoursFile | None = None
    prices: PricesFile | None = None
    problems: tuple[Problem, ...] = ()
    stamp: tuple = field(default=(), compare=False)  # files' (name, size, mtime): a change means read again


def folder_stamp(folder: Path) -> tuple:
    """(name, size, mtime_ns) of every knowledge file: cheap enough to compare before every answer."""
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".md" or p.name in (HOURS_FILE, PRICES_FILE))
    except OSError:
        return ()
    stamp = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        stamp.append((path.name, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def load_folder(folder: Path) -> KnowledgeFiles:
    """Read the knowledge folder. Never raises for what is in the files: problems are returned."""
    stamp = folder_stamp(folder)
    if not folder.is_dir():
        return KnowledgeFiles(folder, problems=(Problem(str(folder), None, "", "no such knowledge folder: create "
                                                        "it or set knowledge.dir"),), stamp=stamp)
    entries: list[Entry] = []
    problems: list[Problem] = []
    ids: dict[str, Entry] = {}
    for path in sorted(folder.glob("*.md")):
        found, trouble = read_markdown(path, _display(folder, path))
        problems += trouble
        for entry in found:
            if entry.id in ids:
                first = ids[entry.id]
                problems.append(Problem(entry.file, entry.line, "", f"{entry.title!r} has the same id {entry.id!r} "
                                        f"as the entry at {first.file}:{first.line}: rename one"))
                continue
            ids[entry.id] = entry
            entries.append(entry)
    hours = prices = None
    if (folder / HOURS_FILE).exists():
        hours, trouble = read_yaml_file(folder / HOURS_FILE, HoursFile, _display(folder, folder / HOURS_FILE))
        problems += trouble
    if (folder / PRICES_FILE).exists():
        prices, trouble = read_yaml_file(folder / PRICES_FILE, PricesFile, _display(folder, folder / PRICES_FILE))
        problems += trouble
    return KnowledgeFiles(folder, tuple(entries), hours, prices, tuple(problems), stamp)  # type: ignore[arg-type]


def _display(folder: Path, path: Path) -> str:
    """The name problems use: relative to the current folder when it can be, as an admin typed it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
