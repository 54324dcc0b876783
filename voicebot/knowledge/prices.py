"""Price estimates computed in code: "how much for 50 desks?" -> 50 x unit price, the volume discount, the
conditions, and the words "an estimate".

The figures a caller hears about money must be right, so no model produces them: the item comes from
retrieval over ``prices.yaml`` (its name and aliases), the quantity from the question (digits as Whisper writes
them, or number words), and the arithmetic is ``Decimal`` here. The result is an ``Estimate`` the dialogue can
keep with the lead, and a sentence that says it is an estimate and repeats the item's own conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from voicebot.knowledge.files import PriceItem, PricesFile

_SYMBOL = {"USD": "$", "GBP": "£", "EUR": "€"}
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen")
_SMALL = {w: i for i, w in enumerate(_NUMBER_WORDS.split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                                "ninety"])}
_SCALES = {"hundred": 100, "thousand": 1000}


@dataclass(frozen=True)
class Estimate:
    """quantity x unit_price = subtotal; less discount_percent of it = total. All in ``currency``."""

    item_id: str
    item: str
    quantity: int
    unit: str
    unit_price: Decimal
    subtotal: Decimal
    discount_percent: Decimal
    total: Decimal
    currency: str
    conditions: str


_TOKEN = re.compile(r"[$£€]?\d[\d,.]*%?|[a-zа-яё]+", re.IGNORECASE)
_NOT_COUNTED = {"%", "percent", "dollar", "dollars", "pound", "pounds", "euro", "euros", "cents", "off"}
_FILLER = {"a", "an", "the", "of", "with", "for", "my", "per", "and", "in", "on", "to", "up"}


def _numbers(tokens: list[str]) -> list[tuple[int, int]]:
    """Every count said in ``tokens`` as (value, index of the token after it): digits ("50", "1,200") or words
    ("twenty five", "one hundred and twenty", "a dozen"). Money ("$50"), decimals and percentages are not counts."""
    found: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token[0].isdigit():
            plain = token.replace(",", "")
            if plain.isdigit() and nxt not in _NOT_COUNTED:
                found.append((int(plain), i + 1))
            i += 1
            continue
        if token in ("a", "one") and nxt == "dozen":
            found.append((12, i + 2))
            i += 2
            continue
        total = current = 0
        j = i
        while j < len(tokens):
            word = tokens[j]
            if word in _SMALL:
                current += _SMALL[word]
            elif word in _TENS:
                current += _TENS[word]
            elif word in _SCALES and j > i:
                if _SCALES[word] == 100:
                    current *= 100
                else:
                    total, current = total + (current or 1) * 1000, 0
            elif word == "and" and j > i and j + 1 < len(tokens) and (tokens[j + 1] in _SMALL or
                                                                    tokens[j + 1] in _TENS):
                pass
            else:
                break
            j += 1
        if j > i:
            if total + current > 0 and (tokens[j] if j < len(tokens) else "") not in _NOT_COUNTED:
                found.append((total + current, j))
            i = j
        else:
            i += 1
    return found


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("es") and word[:-2].endswith(("x", "s", "sh", "ch")):
        return word[:-2]
    return word[:-1] if len(word) > 2 and word.endswith("s") and not word.endswith("ss") else word


def counted_words(item: PriceItem) -> frozenset[str]:
    """The words a count of ``item`` is followed by: its unit ("50 boxes"), and its names when the unit is the
    thing itself ("50 standing desks" for a price per desk), but not for a price per hour ("5 printers" is no
    number of hours)."""
    unit = {_singular(w) for w in _TOKEN.findall(f"{item.unit} {item.units}".casefold())}
    names = {_singular(w) for phrase in (item.name, *item.aliases) for w in _TOKEN.findall(phrase.casefold())}
    words = unit | (names if unit & names else set())
    return frozenset(w for w in words if w not in _FILLER and len(w) > 1 and not w[0].isdigit())


def names_item(text: str, item: PriceItem) -> bool:
    """Whether ``text`` names ``item`` by a word of its name or aliases ("how much are the desks?")."""
    names = {_singular(w) for phrase in (item.name, *item.aliases) for w in _TOKEN.findall(phrase.casefold())}
    said = {_singular(w) for w in _TOKEN.findall(text.casefold())}
    return bool({w for w in names & said if w not in _FILLER and w not in _MODIFIERS and len(w) > 2})


_MODIFIERS = frozenset("new old big small large extra other same next".split())
"""Words of a name or alias that name nothing alone: "I'd like a quote for a new bathroom." was quoted a plumber's
tap replacement (alias "new tap")."""


def naming_strength(text: str, item: PriceItem) -> int:
    """How closely ``text`` names ``item``: the words of its longest name or alias said whole ("standing desk": 2),
    else 0. "3 standing desks" names the desk by a whole alias and the chair only by a word of "desk chair"."""
    said = {_singular(w) for w in _TOKEN.findall(text.casefold())}
    whole = [len(words) for phrase in (item.name, *item.aliases)
             if (words := {_singular(w) for w in _TOKEN.findall(phrase.casefold())} - _FILLER) and words <= said]
    return max(whole, default=0)


_BACK = frozenset("them those these ones units pieces".split())
"""Words that count what was asked about before: "how much would twelve of them cost?" after the desk's price."""


def quantity_in(text: str, counted: frozenset[str] | None = None) -> int | None:
    """The quantity a caller asks for: "50 desks" -> 50, "twenty five chairs" -> 25, "a dozen" -> 12; None when
    no count is said. With ``counted`` (``counted_words(item)``), only a count followed within three words by
    one of them: "how much to fix 5 printers" is no number of hours."""
    tokens = [t.casefold() for t in _TOKEN.findall(text.replace("-", " "))]
    numbers = _numbers(tokens)
    if counted is None:
        return numbers[0][0] if numbers else None
    for value, after in numbers:
        window = []
        for token in tokens[after:after + 3]:
            if token[0].isdigit() or token in _SMALL or token in _TENS:
                break  # the next count: what follows is counted by it
            window.append(_singular(token))
        if any(t in counted or t in _BACK for t in window):
            return value
    return None


def money(amount: Decimal, currency: str) -> str:
    """$19,305.00 -> "$19,305", $24.99 -> "$24.99": cents only when there are some."""
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    whole = amount == amount.to_integral_value()
    text = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    return f"{_SYMBOL.get(currency, '')}{text}" if currency in _SYMBOL else f"{text} {currency}"


def cost_of(item: PriceItem, currency: str) -> str:
    """"costs $40 per shot", or "is free" for a price of 0 (a pharmacy's "Covid booster costs $0 per shot")."""
    return "is free" if item.price == 0 else f"costs {money(item.price, currency)} per {item.unit}"


def estimate(item: PriceItem, quantity: int, currency: str) -> Estimate:
    """The price of ``quantity`` of ``item``: the highest volume discount that applies, rounded to cents."""
    quantity = max(quantity, item.minimum)
    subtotal = item.price * quantity
    percent = Decimal(0)
    for tier in item.discounts:
        if quantity >= tier.min_quantity:
            percent = tier.percent
    total = (subtotal * (100 - percent) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return Estimate(item.id, item.name, quantity, item.unit, item.price, subtotal, percent, total, currency,
                    item.conditions)


def say_estimate(est: Estimate, item: PriceItem, prices: PricesFile, asked: int | None = None) -> str:
    """One or two sentences for the phone, always with the word "estimate"."""
    text = _cost(est, item) + "."
    if asked is not None and asked < item.minimum:
        text = f"We sell {item.name.lower()} from {item.minimum} {item.units}. " + text
    extras = " ".join(t for t in (est.conditions, prices.note) if t)
    return f"{text} {extras}".strip()


def _cost(est: Estimate, item: PriceItem) -> str:
    units = item.unit if est.quantity == 1 else item.units
    cost = (f"For {est.quantity} {units}, at {money(est.unit_price, est.currency)} per {item.unit}, the estimate "
            f"is {money(est.subtotal, est.currency)}")
    if est.discount_percent:
        cost += (f", or {money(est.total, est.currency)} after our {_percent(est.discount_percent)} "
                 "volume discount")
    return cost


def in_sentence(name: str) -> str:
    """An item's name inside a sentence: lower case, but "A4" and "HP" as written ("the a4 copy paper" was said)."""
    return " ".join(w if any(c.isdigit() for c in w) or (w.isupper() and len(w) > 1) else w.lower()
                    for w in name.split())


SELLS = re.compile(r"\b(do|does|can) (you|u|your \w+|they|i) (sell|carry|stock|supply|buy|get|do|offer|provide|"
                    r"have)\b",
                    re.IGNORECASE)
_QUALIFIED = re.compile(r"\b(?:in (?!stock\b)(?:a |an )?\w+|with|without|that|which|for|under|below|over|bigger|"
                        r"smaller|larger|cheaper|black|white|grey|gray|red|blue|green|brown|leather|wooden|metal)\b",
                        re.IGNORECASE)
"""An item asked for with something the price list does not hold ("office chairs in black", "a desk with drawers",
a gym's "classes for beginners"): "Yes, we do." would promise it."""
_IN_STOCK = re.compile(r"\b(in stock|available|availability|on the shelf|out of stock|в наличии)\b", re.IGNORECASE)


def say_unit_price(item: PriceItem, prices: PricesFile, question: str, asks_price: bool) -> str:
    """No quantity said: the unit price, its best volume discount, the conditions; asked whether it is sold ("do
    you sell desks?", not ``asks_price``), "Yes, we do." first, unless stock or a detail the list lacks is asked."""
    text = _plain_unit_price(item, prices)
    if _IN_STOCK.search(question):  # the price list says what is sold, never what is on the shelf
        return f"I can't check stock from here, but I can tell you the price. {text}"
    if SELLS.search(question) and _QUALIFIED.search(question):  # "... chairs in black?": no "yes"
        return f"I can't check the details of that from here, but I can tell you the price. {text}"
    return f"Yes, we do. {text}" if SELLS.search(question) and not asks_price else text


def _plain_unit_price(item: PriceItem, prices: PricesFile) -> str:
    """The unit price, its best volume discount, the conditions."""
    text = f"{item.name} {cost_of(item, prices.currency)}."
    if item.discounts:
        best = item.discounts[-1]
        first = item.discounts[0]
        text += (f" From {first.min_quantity} {item.units} there's a {_percent(first.percent)} volume discount"
                 + (f", up to {_percent(best.percent)} from {best.min_quantity}." if best is not first else "."))
    if item.conditions:
        text += f" {item.conditions}"
    return text


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f} percent"


_PARTS = re.compile(r"\b(?:and|plus|with|or|then)\b|[,&+/]", re.IGNORECASE)


def named_parts(text: str, items: Iterable[PriceItem]) -> list[tuple[PriceItem, str]]:
    """The price items ``text`` names one by one ("25 desks and 25 chairs" -> both), each with the part of the
    text that names it, in the order said: in each part between "and", "plus", "with" or commas, the item it
    names most closely (``naming_strength``), none when two tie. "beard trim" is the beard trim, not also the
    haircut that has "trim" for an alias."""
    items = list(items)
    found: list[tuple[PriceItem, str]] = []
    for part in _PARTS.split(text):
        strengths = sorted(((naming_strength(part, i), n) for n, i in enumerate(items)), reverse=True)
        if strengths and strengths[0][0] > 0 and (len(strengths) == 1 or strengths[1][0] < strengths[0][0]):
            item = items[strengths[0][1]]
            if all(item is not other for other, _ in found):
                found.append((item, part))
    return found


def items_in(text: str, items: Iterable[PriceItem]) -> list[PriceItem]:
    """The price items ``text`` names one by one (``named_parts``)."""
    return [item for item, _ in named_parts(text, items)]


def say_estimates(parts: list[tuple[PriceItem, str]], prices: PricesFile) -> tuple[str, list[Estimate]]:
    """Several items with their counts ("a quote for 25 standing desks and 25 chairs": the chairs alone were
    priced): each estimate, computed here, and the sum; an item said without a count is one of it."""
    estimates, said = [], []
    for item, part in parts:
        est = estimate(item, quantity_in(part, counted_words(item)) or 1, prices.currency)
        estimates.append(est)
        said.append(_cost(est, item))
    total = money(sum((e.total for e in estimates), Decimal(0)), prices.currency)
    return f"{'. '.join(said)}. That's {total} in all. {prices.note or ''}".strip(), estimates


def say_prices(items: list[PriceItem], prices: PricesFile) -> str:
    """One of each of several items ("How much for a haircut and a beard trim together?"): each unit price and
    their sum, computed here; conditions and discounts are left to a question about one item."""
    each = [f"{item.name if n == 0 or not item.name[1:2].islower() else item.name[:1].lower() + item.name[1:]} "
            f"{cost_of(item, prices.currency)}" for n, item in enumerate(items)]
    listed = each[0] if len(each) == 1 else f"{', '.join(each[:-1])} and {each[-1]}"
    total = money(sum((item.price for item in items), Decimal(0)), prices.currency)
    both = "both" if len(items) == 2 else f"all {len(items)}"
    return f"{listed}, so {total} for {both} together. {prices.note or ''}".strip()


AMOUNT = re.compile(r"[£$€]\s?(\d[\d,]*(?:\.\d{1,2})?)|\b(\d[\d,]*(?:\.\d{1,2})?)\s?(?:pounds?|dollars?|euros?|gbp|usd|eur)\b",
                     re.IGNORECASE)


def misprices(sentence: str, items: Sequence[PriceItem]) -> bool:
    """Whether a sentence (the model's) gives the one price item it names an amount the price list cannot give it:
    not its unit price times a count, with or without one of its volume discounts. Why: every figure the model says
    must be in the call's evidence, but "Beard trim costs £25 per trim." passed that check with the blow-dry's £25
    said a turn before. A sentence naming several items (a sum) or none is left to the grounding check."""
    named = items_in(sentence, items)
    if len(named) != 1:
        return False
    item = named[0]
    stated = {_amount(m) for m in AMOUNT.finditer(item.conditions)}  # "Delivery is free from $50."
    factors = [Decimal(1), *((100 - tier.percent) / 100 for tier in item.discounts)]
    for match in AMOUNT.finditer(sentence):
        amount = _amount(match)
        if not amount or item.price <= 0 or amount in stated:
            continue
        if not any(_whole(amount / (item.price * factor)) for factor in factors):
            return True
    return False


def _amount(match: re.Match[str]) -> Decimal:
    return Decimal((match.group(1) or match.group(2)).replace(",", ""))


def _whole(ratio: Decimal) -> bool:
    """A count of items: a whole number of them, to the cent's rounding."""
    return ratio >= 1 and abs(ratio - ratio.to_integral_value()) < Decimal("0.001") * max(ratio, Decimal(1))
