"""A large knowledge base for ``voicebot bench kb --entries N``: the demo base plus generated entries.

Why generated: the issue sets its speed target (p95 under 30 ms a question) for 500 entries, and the demo
company has about 40. Padding an index with copies of vectors would time the arithmetic but not the real path
(reading the files, BM25 over a real vocabulary, a search whose keys and passages all differ). So this writes
real Markdown: the demo files as they are, and beside them entries about the company's product range, each
an ordinary question with a one-or-two-sentence answer, made from products and question patterns below. They
are loaded, embedded and indexed by the same ``KnowledgeBase`` as the demo base; only the words are made up
(and they say nothing the bot would ever speak: the folder lives in a temporary directory).
"""

from __future__ import annotations

import shutil
from pathlib import Path

PRODUCTS = (
    "label printers", "whiteboards", "desk lamps", "paper shredders", "laminators", "filing cabinets",
    "monitor arms", "footrests", "ergonomic keyboards", "wireless mice", "webcams", "conference phones",
    "projectors", "projector screens", "document cameras", "laptop stands", "docking stations", "USB hubs",
    "surge protectors", "extension cords", "cable trays", "coat stands", "reception desks", "meeting tables",
    "bookcases", "lockers", "safes", "cash boxes", "time clocks", "binding machines", "paper trimmers",
    "staplers", "hole punches", "tape dispensers", "sticky notes", "highlighters", "fountain pens",
    "envelopes", "shipping boxes", "bubble wrap", "packing tape", "notebooks", "planners", "wall calendars",
    "desk organisers", "drawer units", "room dividers", "acoustic panels", "air purifiers", "desk fans",
    "space heaters", "water dispensers", "coffee machines", "microwaves", "first aid kits", "fire extinguishers",
    "hand sanitiser", "paper towels", "bin bags", "recycling bins",
)
PATTERNS = (
    ("Do you have {p} in stock?", "Most {p} are in stock at our Seattle warehouse and ship within {a} business "
                                  "days. Our website shows the stock of each model."),
    ("What warranty comes with {p}?", "Our {p} come with a {b} year warranty. We repair or replace a faulty one "
                                      "free of charge during that time."),
    ("Can I see {p} in your showroom?", "Yes, we keep {a} models of {p} on display in our Seattle showroom. Call "
                                        "ahead if you want to see a particular one."),
    ("Do you sell spare parts for {p}?", "We keep spare parts for the {p} we sell for {b} years. Ask us with the "
                                         "model name and we check what is available."),
    ("Can you recommend {p} for a small office?", "For a small office most customers choose our mid-range {p}. "
                                                  "Our sales team can compare {a} models for you."),
    ("Do you recycle old {p}?", "Yes, when we deliver new {p} we take up to {a} old ones away for recycling at "
                                "no charge."),
    ("Are your {p} available in other colours?", "Most of our {p} come in {a} colours. The website lists the "
                                                 "colours of each model."),
    ("How do I get a manual for {p}?", "Every product page has the manual for our {p} to download. We can also "
                                       "email it to you within {b} business days."),
)


def write_base(folder: Path, entries: int, demo: Path) -> int:
    """Fill ``folder`` with the demo base's files and generated entries up to ``entries`` Markdown entries in all
    (the demo's own count when it has more); returns how many entries were generated."""
    from voicebot.knowledge.files import load_folder

    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(demo.iterdir()):
        if path.is_file() and path.suffix in (".md", ".yaml"):
            shutil.copyfile(path, folder / path.name)
    wanted = max(entries - len(load_folder(demo).entries), 0)
    lines = ["# Our product range", ""]
    made = 0
    for index in range(wanted):
        product = PRODUCTS[index % len(PRODUCTS)]
        title, answer = PATTERNS[(index // len(PRODUCTS)) % len(PATTERNS)]
        rounds = index // (len(PRODUCTS) * len(PATTERNS))
        if rounds:  # more entries than products x patterns: the same patterns for another line of products
            product = f"{product}, series {rounds + 1}"
        lines += [f"## {title.format(p=product)}", answer.format(p=product, a=2 + index % 4, b=1 + index % 5), ""]
        made += 1
    (folder / "zz-generated-range.md").write_text("\n".join(lines), encoding="utf-8")
    return made
