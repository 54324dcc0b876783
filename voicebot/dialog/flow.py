"""Menus from config: nodes with a prompt, options by speech and by DTMF, the tools allowed there, free-form nodes.

The schema (``MenuConfig``) lives here, next to the code that walks it; config.py imports it for ``dialog.menu``,
so this module never imports ``voicebot.config``. Errors are raised on the node, option or key at fault, so
``load_config`` reports file, line and field. The rule that every node is at most ``MAX_STEPS_TO_HUMAN`` steps
from ``goto: operator`` is about the menu path: the guard offers a human anywhere by voice and key anyway.
``check_escalation_overlap`` needs the escalation section too, so ``Config`` calls it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from voicebot.crm.tools import CRM_TOOLS
from voicebot.strict import StrictModel
from voicebot.text import normalize, phrase_pattern, sounds_like, spoken_key

OPERATOR = "operator"
"""The special ``goto`` target: a transfer to a human. Not a node name."""
MAX_STEPS_TO_HUMAN = 2
MAX_OPTIONS = 5
"""Callers lose track of longer menus; the research asks for short, discrete rounds."""

TRANSFER_TOOL = "transfer_to_human"
KNOWN_TOOLS: frozenset[str] = frozenset({*CRM_TOOLS.names(), TRANSFER_TOOL})
"""The tools a node may offer: the CRM's, and the dialogue's own transfer (the model's second path to a human,
offered on every free-form node anyway)."""

NodeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


def _key_as_text(value: Any) -> Any:
    """YAML reads ``dtmf: 1`` as a number; a key is what the admin meant."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


DtmfKey = Annotated[str, BeforeValidator(_key_as_text), Field(pattern=r"^[0-9*#]$", description="0-9, * or #")]


# --- phrases to listen for (words as voicebot.text cuts them) ---------------------------------------------


def phrases_have_words(phrases: list[str]) -> list[str]:
    """The validator of every list of phrases to listen for (an option's ``say``, ``escalation.operator_phrases``,
    as ``field_validator(name)(phrases_have_words)``): each phrase must have a word in it."""
    for phrase in phrases:
        if not normalize(phrase):
            raise ValueError(f"{phrase!r} has no words to listen for")
    return phrases


# --- schema ------------------------------------------------------------------------------------------------


class _Problems:
    """Errors collected with their own ``loc``, raised together as one ValidationError (pydantic prefixes the
    location of the model being validated, so ``load_config`` finds the line of the exact node or key)."""

    def __init__(self) -> None:
        self.items: list[InitErrorDetails] = []

    def add(self, loc: tuple[str | int, ...], message: str, value: Any) -> None:
        if isinstance(value, BaseModel):
            value = value.model_dump()  # a mapping, so the message does not end in "(got MenuNode(...))"
        self.items.append({"type": PydanticCustomError("menu", message), "loc": loc, "input": value})

    def raise_any(self, title: str) -> None:
        if self.items:
            raise ValidationError.from_exception_data(title, self.items)


class MenuOption(StrictModel):
    """One choice in a node: words to say and/or a key to press, and where it leads."""

    say: list[str] = Field(default_factory=list, description="Words that choose this option (whole words, any case).")
    dtmf: DtmfKey | None = None
    goto: str = Field(description="A node name, or operator for a transfer to a human.")

    @field_validator("say", mode="before")
    @classmethod
    def _one_phrase_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    _has_words = field_validator("say")(phrases_have_words)

    @model_validator(mode="after")
    def _can_be_chosen(self) -> MenuOption:
        if not self.say and self.dtmf is None:
            raise ValueError("an option needs words to say, a dtmf key, or both")
        return self


class MenuNode(StrictModel):
    """A point in the call. A menu node only routes; a free-form node hands other speech to the model."""

    prompt: str = Field(min_length=1, description="Said on arrival.")
    reprompt: str | None = Field(None, description="Said after an answer that matched nothing (default: prompt).")
    free_form: bool = Field(False, description="Speech that is not an option goes to the model with `tools`.")
    tools: list[str] = Field(default_factory=list, description="Tools the model may call here.")
    options: list[MenuOption] = Field(default_factory=list, max_length=MAX_OPTIONS)

    @model_validator(mode="after")
    def _consistent(self) -> MenuNode:
        problems = _Problems()
        for index, tool in enumerate(self.tools):
            if tool not in KNOWN_TOOLS:
                problems.add(("tools", index), f"unknown tool; known tools: {', '.join(sorted(KNOWN_TOOLS))}", tool)
        if self.tools and not self.free_form:
            problems.add(("tools",), "tools are only used on free-form nodes (free_form: true), where the model "
                         "leads; a menu node only routes", self.tools)
        keys: dict[str, int] = {}
        phrases: dict[str, int] = {}
        for index, option in enumerate(self.options):
            if option.dtmf is not None:
                if option.dtmf in keys:
                    problems.add(("options", index, "dtmf"),
                                 f"key {option.dtmf} is already used by option {keys[option.dtmf]} of this node",
                                 option.dtmf)
                keys.setdefault(option.dtmf, index)
            for phrase in option.say:
                said = normalize(phrase)
                if phrases.get(said, index) != index:
                    problems.add(("options", index, "say"),
                                 f"{phrase!r} is already said for option {phrases[said]} of this node", phrase)
                phrases.setdefault(said, index)
        problems.raise_any("MenuNode")
        return self


class MenuConfig(StrictModel):
    """The menu graph: named nodes, and the one a call starts in."""

    start: str = Field("main", description="The node a call starts in (after the greeting).")
    nodes: dict[NodeName, MenuNode] = Field(min_length=1)

    @model_validator(mode="after")
    def _safe_graph(self) -> MenuConfig:
        problems = _Problems()
        if self.start not in self.nodes:
            problems.add(("start",), f"no node with this name; nodes: {', '.join(self.nodes)}", self.start)
        if OPERATOR in self.nodes:
            problems.add(("nodes", OPERATOR), "operator is reserved: goto: operator means a transfer to a human",
                         self.nodes[OPERATOR])
        for name, node in self.nodes.items():
            for index, option in enumerate(node.options):
                if option.goto != OPERATOR and option.goto not in self.nodes:
                    problems.add(("nodes", name, "options", index, "goto"),
                                 "no node with this name; use a node name or operator", option.goto)
        reachable = self.reachable()
        steps = self.steps_to_human()
        for name, node in self.nodes.items():
            if name == OPERATOR:
                continue
            if self.start in self.nodes and name not in reachable:
                problems.add(("nodes", name), f"cannot be reached from the start node {self.start!r}", node)
            if name not in steps:
                problems.add(("nodes", name), "has no way to a human: add an option with goto: operator within "
                             f"{MAX_STEPS_TO_HUMAN} steps", node)
            elif steps[name] > MAX_STEPS_TO_HUMAN:
                problems.add(("nodes", name), f"is {steps[name]} steps from a human; every node must reach an "
                             f"option with goto: operator in at most {MAX_STEPS_TO_HUMAN} steps", node)
        problems.raise_any("MenuConfig")
        return self

    def reachable(self) -> set[str]:
        """Nodes a caller can get to from the start by choosing options."""
        seen = {self.start} if self.start in self.nodes else set()
        queue = deque(seen)
        while queue:
            for option in self.nodes[queue.popleft()].options:
                if option.goto in self.nodes and option.goto not in seen:
                    seen.add(option.goto)
                    queue.append(option.goto)
        return seen

    def steps_to_human(self) -> dict[str, int]:
        """Menu steps from each node to a human: the least over its options of 1 for ``goto: operator``, else
        1 + the steps of the target. Breadth-first from ``operator`` over the reversed edges; a node missing from
        the result has no way to a human at all."""
        sources: dict[str, set[str]] = {}
        for name, node in self.nodes.items():
            for option in node.options:
                sources.setdefault(option.goto, set()).add(name)
        steps = {OPERATOR: 0}
        queue = deque([OPERATOR])
        while queue:
            target = queue.popleft()
            for name in sorted(sources.get(target, ())):
                if name not in steps:
                    steps[name] = steps[target] + 1
                    queue.append(name)
        del steps[OPERATOR]
        return steps


def check_escalation_overlap(menu: MenuConfig, dtmf_key: str, operator_phrases: Iterable[str],
                             loc: tuple[str, ...] = ("dialog", "menu")) -> None:
    """Reject options the escalation guard always takes first, which would otherwise look live but never fire:
    the escalation key, or words containing an operator phrase, on an option that does not go to ``operator``."""
    patterns = [(phrase, phrase_pattern(phrase)) for phrase in operator_phrases]
    problems = _Problems()
    for name, node in menu.nodes.items():
        for index, option in enumerate(node.options):
            if option.goto == OPERATOR:
                continue
            where = (*loc, "nodes", name, "options", index)
            if option.dtmf == dtmf_key:
                problems.add((*where, "dtmf"), f"key {dtmf_key} is the escalation key (escalation.dtmf_key) and "
                             "always transfers to a human, so this option must have goto: operator", option.dtmf)
            for said in option.say:
                hits = [phrase for phrase, pattern in patterns if pattern.search(normalize(said))]
                if hits:
                    problems.add((*where, "say"), f"{said!r} contains the operator phrase {hits[0]!r}, which always "
                                 "transfers to a human, so this option must have goto: operator", said)
    problems.raise_any("Config")


_TO_MAIN = {"say": ["main menu", "start over"], "dtmf": "*", "goto": "main"}
_TO_HUMAN = {"say": ["operator"], "dtmf": "0", "goto": OPERATOR}
_ALL_TOOLS = sorted(KNOWN_TOOLS - {TRANSFER_TOOL})


def _desk(prompt: str, ask: str, tools: list[str]) -> dict[str, Any]:
    """A free-form node of the default menu: back to main with star, a person with 0."""
    return {"prompt": prompt, "reprompt": f"{ask} Press star for the main menu, or 0 for a person.",
            "free_form": True, "tools": tools, "options": [_TO_MAIN, _TO_HUMAN]}


DEFAULT_MENU: dict[str, Any] = {
    "start": "main",
    "nodes": {
        "main": {
            "prompt": "What can I help you with? You can ask about an order, a repair visit, or buying from us.",
            "reprompt": "Sorry, I did not get that. Say orders, repairs or sales, or press 1, 2 or 3. "
                        "For a person, say operator or press 0.",
            "free_form": True,
            "tools": _ALL_TOOLS,
            "options": [
                {"say": ["orders", "order status"], "dtmf": "1", "goto": "orders"},
                {"say": ["repairs", "appointments"], "dtmf": "2", "goto": "repairs"},
                {"say": ["sales"], "dtmf": "3", "goto": "sales"},
                _TO_HUMAN,
            ],
        },
        "orders": _desk("Orders. What is your order number, or what would you like to know?",
                        "Tell me your order number.",
                        ["identify_caller", "verify_caller", "get_caller_history", "list_open_orders",
                         "list_recent_orders", "get_order", "create_ticket", "request_callback"]),
        "repairs": _desk("Repairs and visits. What needs fixing, and which day suits you?",
                         "Tell me what needs fixing.",
                         ["identify_caller", "verify_caller", "get_caller_history", "list_free_slots",
                          "book_appointment", "list_my_appointments", "reschedule_appointment", "cancel_appointment",
                          "create_ticket", "request_callback"]),
        "sales": _desk("Sales. What are you looking for?", "Tell me what you would like to buy.",
                       ["identify_caller", "create_lead", "request_callback"]),
    },
}


def default_menu() -> MenuConfig:
    """The demo shop's menu (Northwind Supplies); config.yaml spells out the same."""
    return MenuConfig.model_validate(DEFAULT_MENU)


# --- runtime -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goto:
    """The caller moved to ``node``; say ``prompt``."""
    node: str
    prompt: str


@dataclass(frozen=True)
class Transfer:
    """The caller chose a human through the menu."""
    reason: str


@dataclass(frozen=True)
class FreeForm:
    """Hand ``text`` to the model, offering only ``tools``."""
    text: str
    tools: tuple[str, ...]


@dataclass(frozen=True)
class NoMatch:
    """Nothing matched (or several options did): say ``reprompt``, and tell the guard (``note_no_match``)."""
    reprompt: str


FlowResult = Goto | Transfer | FreeForm | NoMatch

_POLITE = frozenset(
    "please um uh er erm ok okay yes yeah so well just hi hello thanks thank you i id want would like to go the a an"
    .split()
)
"""Words around a bare command ("orders please", "I want to go to sales") that do not change it."""


class MenuFlow:
    """Where one call is in the menu. Not thread-safe; one per call.

    Matching: a key always picks the option with that key. Speech on a menu node picks the one option whose words
    occur in it (none, or several different options, is a ``NoMatch``). On a free-form node speech picks an option
    only when it is a bare command ("sales", "orders please"); anything else ("where is my order 10452") goes to the
    model as ``FreeForm``, so a request is never cut short by a keyword in it.
    """

    def __init__(self, menu: MenuConfig):
        self.menu = menu
        self.current = menu.start
        self._history: list[str] = []
        self._patterns = {name: [[phrase_pattern(p) for p in option.say] for option in node.options]
                          for name, node in menu.nodes.items()}

    @property
    def node(self) -> MenuNode:
        return self.menu.nodes[self.current]

    def prompt(self) -> str:
        return self.node.prompt

    def reprompt(self) -> str:
        return self.node.reprompt or self.node.prompt

    def allowed_tools(self) -> tuple[str, ...]:
        """The tools the model may call here; the transfer tool on every free-form node, none on a menu node."""
        if not self.node.free_form:
            return ()
        return tuple(dict.fromkeys([*self.node.tools, TRANSFER_TOOL]))

    def match(self, text: str | None = None, digit: str | None = None, *, spoken_keys: bool = False) -> FlowResult:
        """What the caller's words or key mean at the current node; moves on a ``Goto``. With ``spoken_keys`` (the
        bot did not just ask for a number) a turn that only names a key ("two", "press 2") is that key, and a key
        no option has is a ``NoMatch``: a bare "2" at the greeting went to the model, which handed the call over.
        "Star" and "pound" are no answer to any question: they are keys wherever they are said."""
        options = self.node.options
        key = spoken_key(text) if text else None
        if key is not None and (spoken_keys or key in "*#") and any(o.dtmf for o in options):
            chosen = next((o for o in options if o.dtmf == key), None)
            return self._take(chosen, f"said {text.strip()!r}") if chosen else NoMatch(self.reprompt())
        if digit is not None:
            chosen = next((o for o in options if o.dtmf == digit), None)
            return self._take(chosen, f"pressed {digit}") if chosen else NoMatch(self.reprompt())
        words = normalize(text or "")
        if not words:
            return NoMatch(self.reprompt())
        chosen = self._spoken(words)
        if chosen is not None:
            return self._take(chosen, f"said {text.strip()!r}")
        if self.node.free_form:
            return FreeForm(text.strip(), self.allowed_tools())
        return NoMatch(self.reprompt())

    def _spoken(self, words: str) -> MenuOption | None:
        patterns = self._patterns[self.current]
        bare = " ".join(w for w in words.split() if w not in _POLITE)
        if self.node.free_form:
            hits = [i for i, option in enumerate(patterns) if bare and any(p.fullmatch(bare) for p in option)]
        else:
            hits = [i for i, option in enumerate(patterns) if any(p.search(words) for p in option)]
        if not hits and bare:  # a bare command misheard: "cells, please" at "orders, repairs or sales"
            hits = [i for i, option in enumerate(self.node.options) if any(sounds_like(bare, p) for p in option.say)]
        return self.node.options[hits[0]] if len(hits) == 1 else None

    def _take(self, option: MenuOption, how: str) -> Goto | Transfer:
        if option.goto == OPERATOR:
            return Transfer(f"menu option at {self.current}: {how}")
        return self.goto(option.goto)

    def goto(self, node: str) -> Goto:
        """Move to ``node`` (a KeyError for a name that is not a node)."""
        self.menu.nodes[node]  # noqa: B018 - fail before changing state
        if node != self.current:
            self._history.append(self.current)
            self.current = node
        return Goto(node, self.prompt())

    def back(self) -> Goto:
        """Back to the previous node, or stay at the start."""
        self.current = self._history.pop() if self._history else self.menu.start
        return Goto(self.current, self.prompt())

    def reset(self) -> Goto:
        self._history.clear()
        self.current = self.menu.start
        return Goto(self.current, self.prompt())
