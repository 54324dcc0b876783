"""Price questions about a kind of item rather than one item: "What's your cheapest plan?", "How much are your plans?".

Why: the price list knows each item's price and code can compare them; retrieval cannot. A broadband provider's
"What's the cheapest plan?" was asked back "are you asking about the price of the fiber 500?", "Which plan is the
cheapest?" heard "I don't have a price for that", and "How much are your plans?" heard Fiber 500's price alone, as
if it were the only plan.

A kind is a word the question shares with the last word of a name or alias of two or more items ("plan" of the
aliases "500 plan" and "900 plan"; "desk chair" is a chair, no desk); the question must name no single item
("How much is the 500 plan?" is that item's question). Items are compared only when they share a unit ("per
month" against "per kit" is no comparison): then the cheapest or the dearest is said, ties together; otherwise,
and when the question asks what they cost in the plural ("your plans") or by a quality the list does not hold
("your fastest plan" had Fiber 500's price, as if it were the fastest), each one's price is said. A singular "How
much is the desk?" stays retrieval's pick. Every figure is the price list's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from voicebot.knowledge.files import PriceItem, PricesFile
from voicebot.knowledge.prices import _FILLER, _MODIFIERS, _TOKEN, _singular, cost_of, money, named_parts

CHEAPEST = re.compile(r"\b(cheapest|cheaper|least expensive|less expensive|lowest[- ]priced|lowest price|"
                      r"most affordable|budget|entry[- ]level)\b", re.IGNORECASE)
DEAREST = re.compile(r"\b(most expensive|more expensive|dearest|priciest|pricier|highest[- ]priced|"
                     r"top[- ]of[- ]the[- ]range)\b", re.IGNORECASE)
_ASKS_PRICE = re.compile(r"\b(how much|cost\w*|price\w*|pricing|charge\w*|rates?|fees?)\b", re.IGNORECASE)
CHEAPER = re.compile(r"\b(cheaper|less expensive|more affordable|lower[- ]priced|lower price|for less)\b", re.IGNORECASE)
DEARER = re.compile(r"\b(more expensive|pricier|dearer|higher[- ]priced|higher price|more premium)\b", re.IGNORECASE)
_OTHER_SUPERLATIVE = re.compile(r"\b(fastest|quickest|slowest|best|biggest|largest|smallest|newest|most popular|"
                                r"strongest|longest|shortest)\b", re.IGNORECASE)


def _words(phrase: str) -> list[str]:
    return [_singular(w) for w in _TOKEN.findall(phrase.casefold())
            if w not in _FILLER and w not in _MODIFIERS and len(w) > 2 and not w[0].isdigit()]


def _heads(item: PriceItem) -> set[str]:
    """The last word of the item's name and of each alias: what the item is ("plan" of "500 plan"; "chair", not
    "desk", of "desk chair")."""
    return {words[-1] for phrase in (item.name, *item.aliases) if (words := _words(phrase))}


def kind_of(question: str, items: Iterable[PriceItem]) -> tuple[str, list[PriceItem]] | None:
    """The kind of item ``question`` asks about and the items of that kind (two or more), or None. Of several
    such words, the one with the fewest items is the kind."""
    items = list(items)
    kinds = {}
    for word in set(_words(question)):
        group = [i for i in items if word in _heads(i)]
        if len(group) >= 2:
            kinds[word] = group
    if not kinds:
        return None
    word = min(kinds, key=lambda w: (len(kinds[w]), w))
    return word, kinds[word]


def group_price(question: str, items: Iterable[PriceItem], prices: PricesFile) -> tuple[str, tuple[str, ...]] | None:
    """What to say to a price question about a kind of item, and the price documents it names (``price:<id>``);
    None when ``question`` is not one (it names one item, or no kind, or asks nothing of price)."""
    items = list(items)
    cheapest, dearest = bool(CHEAPEST.search(question)), bool(DEAREST.search(question))
    if not (cheapest or dearest or _ASKS_PRICE.search(question)) or len(named_parts(question, items)) == 1:
        return None
    found = kind_of(question, items)
    if found is None:
        return None
    word, group = found
    group.sort(key=lambda i: i.price)
    other = _OTHER_SUPERLATIVE.search(question) is not None
    if (cheapest != dearest) and len({i.unit for i in group}) == 1 and not other:
        price = group[0].price if cheapest else group[-1].price
        chosen = [i for i in group if i.price == price]
        return _superlative(chosen, word, cheapest, prices), _ids(chosen)
    plural = any(_singular(w) == word != w for w in _TOKEN.findall(question.casefold()))
    if not (plural or other or cheapest or dearest):
        return None  # "How much is the desk?": retrieval's pick of one item, as before
    return each_price(group, prices), _ids(group)


def _ids(items: list[PriceItem]) -> tuple[str, ...]:
    return tuple(f"price:{i.id}" for i in items)


def _superlative(chosen: list[PriceItem], word: str, cheapest: bool, prices: PricesFile) -> str:
    which = "cheapest" if cheapest else "most expensive"
    cost = f"{money(chosen[0].price, prices.currency)} per {chosen[0].unit}"
    if len(chosen) == 1:
        return f"Our {which} {word} is {chosen[0].name}, at {cost}."
    return f"Our {which} {word}s are {_listed([i.name for i in chosen])}, at {cost} each."


def each_price(items: list[PriceItem], prices: PricesFile) -> str:
    """Each item's unit price, cheapest first ("Fiber 500 costs £35 per month and Fiber 900 costs £50 per
    month."); no sum: nobody asked for all of them together."""
    return _listed([f"{i.name} {cost_of(i, prices.currency)}" for i in items]) + "."


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def compared_price(question: str, item: PriceItem, items: Iterable[PriceItem],
                   prices: PricesFile) -> tuple[str, tuple[str, ...]] | None:
    """"Do you have anything cheaper?" right after ``item``'s price: the items of its kind (a head word shared, the
    same unit) priced below it, cheapest first, or that the list has none; the same for "more expensive". None when
    ``question`` compares nothing, or nothing on the list is of the item's kind. It heard "I don't have a price
    for that" (the question names no item)."""
    cheaper, dearer = bool(CHEAPER.search(question)), bool(DEARER.search(question))
    kin = [i for i in items if i.id != item.id and i.unit == item.unit and _heads(i) & _heads(item)]
    if cheaper == dearer or not kin:
        return None
    found = sorted((i for i in kin if (i.price < item.price if cheaper else i.price > item.price)),
                   key=lambda i: i.price, reverse=dearer)
    if not found:
        return f"{item.name} is the {'cheapest' if cheaper else 'most expensive'} of its kind on our list.", \
            (f"price:{item.id}",)
    return each_price(found, prices), _ids(found)
