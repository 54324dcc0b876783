"""An admin's answer to an unanswered question, appended as a new entry to a Markdown file of the knowledge folder.

``append_entry(folder, title, answer, tags)`` writes ``## <title>`` / ``tags: ...`` / ``<answer>`` at the end of
``learned.md`` (created when missing), atomically (``voicebot.fileio``): a reader, the bot's knowledge base
included, sees the old file or the whole new one. Before anything is written the new file is read back with the
same parser the bot uses (``files.read_markdown``) and the whole folder's ids and titles are checked, so what
is written is exactly one valid new entry; any problem raises ``EntryError`` with a message for the admin, and
nothing is written. The knowledge base notices the changed file by its size and mtime (at most once a second)
and answers from the entry on the next question, without a restart.
"""

from __future__ import annotations

import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from voicebot.fileio import write_text_atomic
from voicebot.knowledge.files import Entry, load_folder, read_markdown, slug

LEARNED_FILE = "learned.md"
MAX_TITLE = 200
MAX_ANSWER = 2000
MAX_TAGS = 20
_WRITING = threading.Lock()
_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TAGS_LINE = re.compile(r"^\s*tags\s*:", re.IGNORECASE)


class EntryError(ValueError):
    """The entry cannot be written as given; the message says what to change. Nothing was written."""


@dataclass(frozen=True)
class NewEntry:
    title: str
    answer: str
    tags: tuple[str, ...] = ()


def parse_tags(text: str) -> tuple[str, ...]:
    """``"returns, refund , send back"`` -> the tags, blanks dropped, first spelling of each kept."""
    tags = [t.strip() for t in text.replace("\n", ",").split(",")]
    return tuple(dict.fromkeys(t for t in tags if t))


def check_entry(title: str, answer: str, tags: tuple[str, ...] | list[str] = ()) -> NewEntry:
    """The entry cleaned up (spaces trimmed, line ends normalised), or ``EntryError`` naming every problem."""
    title = " ".join(title.split())
    answer = "\n".join(line.rstrip() for line in answer.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    answer = answer.strip("\n")
    tags = tuple(" ".join(t.split()) for t in tags)
    problems = []
    if not title:
        problems.append("the question title is empty: write the question as callers ask it")
    elif len(title) > MAX_TITLE:
        problems.append(f"the question title is {len(title)} characters: keep it under {MAX_TITLE}")
    elif title.startswith("#") or title.lower().startswith("tags:"):
        problems.append("the question title must not start with '#' or 'tags:'")
    if not answer.strip():
        problems.append("the answer is empty: write what the bot should say")
    elif len(answer) > MAX_ANSWER:
        problems.append(f"the answer is {len(answer)} characters: keep it under {MAX_ANSWER} (the bot speaks "
                        "one or two sentences of it)")
    for number, line in enumerate(answer.split("\n"), 1):
        if _HEADING_LINE.match(line):
            problems.append(f"answer line {number} starts with '#', which would start a new entry: "
                            "remove the '#'")
        elif _FENCE_LINE.match(line):
            problems.append(f"answer line {number} is a code fence (``` or ~~~): the bot cannot speak code")
        elif _TAGS_LINE.match(line):
            problems.append(f"answer line {number} starts with 'tags:': put tags in the tags field")
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags: at most {MAX_TAGS}")
    for tag in tags:
        if len(tag) > 80 or "#" in tag:
            problems.append(f"tag {tag[:40]!r}: at most 80 characters and no '#'")
    if problems:
        raise EntryError("; ".join(problems))
    return NewEntry(title, answer, tags)


def entry_markdown(entry: NewEntry) -> str:
    lines = [f"## {entry.title}"]
    if entry.tags:
        lines.append("tags: " + ", ".join(entry.tags))
    lines.append(entry.answer)
    return "\n".join(lines) + "\n"


def append_entry(folder: str | Path, title: str, answer: str, tags: tuple[str, ...] | list[str] = (),
                 file_name: str = LEARNED_FILE) -> Entry:
    """Append one entry to ``folder/file_name`` and return it as the knowledge base will read it.

    Raises ``EntryError`` (nothing written) for a bad title, answer or tags, a question that is already an entry
    anywhere in the folder, or a file that would not read back as exactly its old entries plus this one."""
    folder = Path(folder)
    if not file_name.endswith(".md") or "/" in file_name or "\\" in file_name or file_name.startswith("."):
        raise EntryError(f"{file_name!r} is not a Markdown file name in the knowledge folder (e.g. learned.md)")
    if not folder.is_dir():
        raise EntryError(f"the knowledge folder {folder} does not exist: create it or set knowledge.dir")
    new = check_entry(title, answer, tags)
    target = folder / file_name
    with _WRITING:  # two admins answering at once: one append after the other, never one lost
        existing = load_folder(folder)
        for entry in existing.entries:
            if entry.title.casefold() == new.title.casefold():
                raise EntryError(f"{new.title!r} is already an entry at {entry.file}:{entry.line}: edit that "
                                 "entry's answer in the file instead")
        wanted_id = f"{target.stem}/{slug(new.title)}"
        if any(e.id == wanted_id for e in existing.entries):
            raise EntryError(f"an entry with the id {wanted_id!r} exists already: word the question differently")
        try:
            old = target.read_text(encoding="utf-8") if target.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise EntryError(f"cannot read {target}: {exc}") from None
        old_entries, old_problems = read_markdown(target) if target.exists() else ([], [])
        text = (old.rstrip("\n") + "\n\n" if old.strip() else "") + entry_markdown(new)
        with tempfile.TemporaryDirectory(prefix="voicebot-entry-") as scratch:
            probe = Path(scratch) / file_name  # same name, so the same ids
            probe.write_text(text, encoding="utf-8")
            entries, problems = read_markdown(probe, str(target))
        added = [e for e in entries if e.id not in {o.id for o in old_entries}]
        if len(problems) > len(old_problems) or len(entries) != len(old_entries) + 1 or len(added) != 1:
            found = "; ".join(str(p) for p in problems[len(old_problems):]) or "it did not read back as one entry"
            raise EntryError(f"the entry would not read back as written: {found}")
        try:
            now = target.read_text(encoding="utf-8") if target.exists() else ""
        except (OSError, UnicodeDecodeError):
            now = None
        if now != old:  # someone edited the file by hand meanwhile: their edit must not be lost
            raise EntryError(f"{target} changed while the entry was checked: try again")
        write_text_atomic(target, text)
    written, _ = read_markdown(target)
    return next(e for e in written if e.title == new.title)
