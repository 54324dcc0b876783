"""``voicebot kb check / search / unanswered``: the admin's tools for the knowledge folder (``knowledge.dir``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from voicebot.cli.common import ConfigOption, console, err_console, fail, get_config

kb_app = typer.Typer(help="The company's knowledge: check the files, ask a question as a caller would.",
                     no_args_is_help=True)

DirOption = Annotated[Path | None, typer.Option("--dir", help="Knowledge folder (default: knowledge.dir).")]


def _folder(config, folder: Path | None) -> Path:
    return folder if folder is not None else config.path(config.knowledge.dir)


@kb_app.command("check")
def check(config_path: ConfigOption = None, folder: DirOption = None):
    """Validate the knowledge files: exit 0, or print every problem as file:line: message and exit 2.

    The bot itself never stops for these: it reports them and answers from the rest."""
    from voicebot.knowledge.files import load_folder

    config = get_config(config_path)
    files = load_folder(_folder(config, folder))
    for problem in files.problems:
        err_console.print(f"  {problem}", markup=False, highlight=False)
    items = len(files.prices.items) if files.prices is not None else 0
    summary = (f"{len(files.entries)} entries, hours: {'yes' if files.hours else 'no'}, "
               f"price items: {items}")
    if files.problems:
        err_console.print(f"[red]{files.folder}: {len(files.problems)} problem(s)[/red]; usable: {summary}",
                          highlight=False)
        raise typer.Exit(2)
    console.print(f"[green]{files.folder}: OK[/green] ({summary})", highlight=False)


@kb_app.command("search")
def search(
    question: Annotated[str, typer.Argument(help="The question, as a caller would ask it.")],
    top: Annotated[int, typer.Option(min=1, max=20, help="How many documents to list.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    now: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                                    help="The moment asked at, in UTC (default: now).")] = None,
    config_path: ConfigOption = None,
    folder: DirOption = None,
):
    """The best documents with their scores, the answer the bot would give, and how long it took."""
    from voicebot.knowledge.base import KnowledgeBase, vectors_file
    from voicebot.knowledge.embed import EmbeddingError, load_embedder
    from voicebot.models import ModelError

    config = get_config(config_path)
    try:
        embedder = load_embedder(config)
    except (ModelError, EmbeddingError) as exc:
        raise fail(str(exc)) from None
    k = config.knowledge
    kb = KnowledgeBase(_folder(config, folder), embedder, k.confident, k.weak, k.margin,
                       vectors_file=vectors_file(config))
    moment = (now.replace(tzinfo=UTC) if now is not None else datetime.now(UTC))
    answer = kb.answer(question, moment)
    hits = kb.index.search(question, top)  # unfiltered: what retrieval saw, before the kind checks
    if as_json:
        print(json.dumps({
            "question": question,
            "answer": {"kind": answer.kind, "text": answer.text, "entry_ids": list(answer.entry_ids),
                       "score": round(answer.score, 4),
                       "estimate": None if answer.estimate is None else {
                           "item": answer.estimate.item_id, "quantity": answer.estimate.quantity,
                           "unit_price": str(answer.estimate.unit_price), "subtotal": str(answer.estimate.subtotal),
                           "discount_percent": str(answer.estimate.discount_percent),
                           "total": str(answer.estimate.total), "currency": answer.estimate.currency}},
            "hits": [{"id": h.doc.id, "kind": h.doc.kind, "score": round(h.score, 4), "dense": round(h.dense, 4),
                      "lexical": round(h.lexical, 4)} for h in hits],
            "latency_ms": round(answer.latency_s * 1000, 2),
            "problems": [str(p) for p in kb.problems],
        }, ensure_ascii=False))
        return
    for problem in kb.problems:
        err_console.print(f"  problem: {problem}", markup=False, highlight=False)
    table = Table(title=f"top {len(hits)} of {len(kb.index)} documents", title_justify="left")
    for column in ("#", "document", "kind", "score", "dense", "bm25"):
        table.add_column(column, justify="right" if column in ("#", "score", "dense", "bm25") else "left")
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), hit.doc.id, hit.doc.kind, f"{hit.score:.3f}", f"{hit.dense:.3f}",
                      f"{hit.lexical:.2f}")
    console.print(table)
    console.print(f"[bold]{answer.kind}[/bold] (score {answer.score:.3f}; confident from {k.confident}, weak "
                  f"from {k.weak}): {answer.text}", highlight=False)
    console.print(f"answered in {answer.latency_s * 1000:.1f} ms", highlight=False)


@kb_app.command("unanswered")
def unanswered(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    since: Annotated[int | None, typer.Option("--since", min=1, metavar="DAYS",
                                              help="Only questions asked in the last DAYS days (default: all).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also list groups an admin has answered.")] = False,
    words: Annotated[bool, typer.Option("--words", help="Group by shared words, without the embedding "
                                                        "model.")] = False,
    config_path: ConfigOption = None,
):
    """The questions callers asked that the bot could not answer, grouped by similarity, most asked first.

    A knowledge question with no match or a weak match, or a transfer right after a caller question, from the
    call store (store.database); grouped with the knowledge base's embedding model (or shared words when it is
    not pulled, or with --words). Groups an admin answered in the review app ("Unanswered") are left out
    unless --all. Questions are shown as stored: PINs, card numbers and dates of birth masked."""
    from datetime import timedelta, timezone

    from voicebot.knowledge.unanswered import QuestionVectors, collect, group_questions, split_answered
    from voicebot.review.app import StoreMissing, open_store
    from voicebot.review.unanswered import AnsweredMarks
    from voicebot.store import StoreError

    config = get_config(config_path)
    try:
        store = open_store(config)
    except (StoreMissing, StoreError) as exc:
        raise fail(str(exc)) from None
    marks: dict[str, str] = {}
    review_db = config.path(config.review.database)
    if review_db.is_file():
        answered_db = AnsweredMarks(review_db, readonly=True)
        try:
            marks = answered_db.marks()
        finally:
            answered_db.close()
    vectors, note = None, ""
    if not words:
        from voicebot.knowledge.embed import EmbeddingError, load_embedder
        from voicebot.models import ModelError

        try:
            vectors, note = QuestionVectors(load_embedder(config)), ""
        except (ModelError, EmbeddingError, OSError) as exc:
            note = f"the embedding model is not available ({exc})"
            err_console.print(f"[yellow]grouping by shared words:[/yellow] {note}", highlight=False)
    moment = datetime.now(timezone.utc) - timedelta(days=since) if since else None
    try:
        grouping = group_questions(collect(store, moment), vectors, marks, note=note)
    finally:
        store.close()
    open_, done = split_answered(grouping.groups, marks)
    shown = open_ + done if show_all else open_
    if as_json:
        print(json.dumps({
            "method": grouping.method, "note": grouping.note, "since_days": since,
            "open": len(open_), "answered": len(done),
            "groups": [{"key": g.key, "question": g.title, "count": g.count, "open": len(g.open_questions(marks)),
                        "first_seen": g.first_seen.isoformat() if g.first_seen else None,
                        "last_seen": g.last_seen.isoformat() if g.last_seen else None,
                        "sources": g.sources, "answered_by": list(g.answered_by), "wordings": g.wordings,
                        "calls": g.calls} for g in shown],
        }, ensure_ascii=False))
        return
    period = f"in the last {since} days" if since else "in all calls"
    table = Table(title=f"{len(open_)} open group(s) of unanswered questions {period} ({len(done)} answered); "
                        f"grouped by {grouping.method}", title_justify="left")
    for column in ("#", "asked", "last asked", "question", "how", "other wordings", "calls"):
        table.add_column(column, justify="right" if column in ("#", "asked") else "left",
                         overflow="fold")
    for rank, g in enumerate(shown, 1):
        how = ", ".join(f"{k} {n}" for k, n in g.sources.items())
        if g.answered_by:
            how += f"; answered: {', '.join(g.answered_by)}"
        others = [w for w in g.wordings if w != g.title.strip()]
        table.add_row(str(rank), str(g.count), f"{g.last_seen:%Y-%m-%d %H:%M}" if g.last_seen else "-", g.title,
                      how, " | ".join(others[:3]) + (" ..." if len(others) > 3 else ""),
                      ", ".join(c[:8] for c in g.calls[:5]) + (" ..." if len(g.calls) > 5 else ""))
    console.print(table)
    if not shown:
        console.print("Nothing unanswered.")
