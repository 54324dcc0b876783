"""Price estimates computed in code: "how much for 50 desks?" -> 50 x unit price, the volume discount, the
conditions, and the words "an estimate".

The figures a caller hears about money must be right, so no model produces them: the item comes from
retrieval over ``prices.yaml`` (its name and aliases), the quantity from the question (digits as Whisper writes
them, or number words), and the arithmetic is ``Decimal`` here. The result is an ``Estimate`` the dialogue can
keep with the lead, and a sentence that says it is an estimate and repeats the item's own conditions.
"""

from __future__ import annotations

import re
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
_DIGITS = re.compile(r"(?<![\d.,$£€])(\d{1,3}(?:,\d{3})+|\d+)(?![\d.]*\s*(?:%|percent|dollars?|pounds?|euros?))")


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


def quantity_in(text: str) -> int | None:
    """The quantity a caller asks for: "50 desks" -> 50, "twenty five chairs" -> 25, "a dozen" -> 12; None
    when no count is said. Amounts of money and percentages are not quantities."""
    lowered = text.casefold().replace("-", " ")
    digits = _DIGITS.search(lowered)
    if digits:
        return int(digits.group(1).replace(",", ""))
    if re.search(r"\b(a|one) dozen\b", lowered):
        return 12
    total = current = 0
    found = False
    for word in re.findall(r"[a-z]+", lowered):
        if word in _SMALL:
            current += _SMALL[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word in _SCALES and (current or found):
            scale = _SCALES[word]
            if scale == 100:
                current *= 100
            else:
                total += (current or 1) * scale
                current = 0
        elif word == "and" and (current or total):
            continue
        else:
            if current or total:
                break
            continue
        found = True
    value = total + current
    return value if found and value > 0 else None


def money(amount: Decimal, currency: str) -> str:
    """$19,305.00 -> "$19,305", $24.99 -> "$24.99": cents only when there are some."""
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    whole = amount == amount.to_integral_value()
    text = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    return f"{_SYMBOL.get(currency, '')}{text}" if currency in _SYMBOL else f"{text} {currency}"


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
    units = item.unit if est.quantity == 1 else item.units
    cost = (f"For {est.quantity} {units}, at {money(est.unit_price, est.currency)} per {item.unit}, the estimate "
            f"is {money(est.subtotal, est.currency)}")
    if est.discount_percent:
        cost += (f", or {money(est.total, est.currency)} after our {_percent(est.discount_percent)} "
                 "volume discount")
    text = cost + "."
    if asked is not None and asked < item.minimum:
        text = f"We sell {item.name.lower()} from {item.minimum} {item.units}. " + text
    extras = " ".join(t for t in (est.conditions, prices.note) if t)
    return f"{text} {extras}".strip()


def say_unit_price(item: PriceItem, prices: PricesFile) -> str:
    """No quantity said: the unit price, its best volume discount, the conditions."""
    text = f"{item.name} costs {money(item.price, prices.currency)} per {item.unit}."
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
