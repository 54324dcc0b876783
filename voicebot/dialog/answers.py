"""Fixed matching before the model, and answers rendered from CRM results.

On a 2-core CPU each model pass costs seconds, so the most common requests never wait for one: a few phrase
patterns map straight to a tool call ("where is my order 10452" -> get_order), and order results are spoken
from templates. Templates say only what the record says, so they are grounded by construction. Everything the
patterns do not catch goes to the model, as before.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from voicebot.crm.spoken import digits_in

_ORDER_WORDS = re.compile(r"\b(order|package|parcel|delivery|shipment)s?\b", re.I)
_WHERE_WORDS = re.compile(r"\b(where|status|arriv\w*|track\w*|deliver\w*|come|coming|ship\w*|when)\b", re.I)
_NUMBER = re.compile(r"\b\d{4,8}\b")

STATUS_PHRASES = {
    "pending": "has been received and is waiting to be prepared",
    "processing": "is being prepared",
    "shipped": "has shipped",
    "delayed": "is delayed",
    "out_for_delivery": "is out for delivery",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
    "returned": "was returned",
}


def match_intent(text: str) -> tuple[str, dict[str, Any]] | None:
    """A tool call for the request when a fixed pattern recognises it, else None (the model decides)."""
    if _ORDER_WORDS.search(text) and _WHERE_WORDS.search(text):
        number = _NUMBER.search(text) or _NUMBER.search(digits_in(text))
        if number:
            return "get_order", {"order_number": number.group(0)}
        return "list_open_orders", {}
    return None


def spoken_date(value: str | date) -> str:
    d = date.fromisoformat(value) if isinstance(value, str) else value
    suffix = "th" if 10 <= d.day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    return f"{d:%A}, {d:%B} {d.day}{suffix}"


def order_sentence(order: dict[str, Any]) -> str:
    status = str(order.get("status", "")).lower()
    text = f"Order {order['number']} {STATUS_PHRASES.get(status, 'is ' + status.replace('_', ' '))}"
    if order.get("carrier") and status in ("shipped", "delayed", "out_for_delivery"):
        text += f" with {order['carrier']}"
    if order.get("delivered_at") and status == "delivered":
        text += f" on {spoken_date(order['delivered_at'])}"
    elif order.get("eta") and status not in ("cancelled", "returned", "delivered"):
        text += f", and should arrive on {spoken_date(order['eta'])}"
    return text + "."


def render(tool: str, args: dict[str, Any], result: dict[str, Any]) -> list[str] | None:
    """Sentences for a tool result the bot can speak without the model, or None to let the model phrase it."""
    value = result.get("result")
    if tool == "get_order":
        if result.get("ok") and isinstance(value, dict):
            return [order_sentence(value), "Is there anything else I can help with?"]
        if result.get("error") == "not_found":
            return [f"I couldn't find order {args.get('order_number', '')}. Could you check the number for me?"]
    if tool == "list_open_orders" and result.get("ok") and isinstance(value, list):
        if not value:
            return ["I don't see any open orders on your account. Is there anything else I can help with?"]
        if len(value) == 1:
            return [order_sentence(value[0]), "Is there anything else I can help with?"]
        head = f"You have {len(value)} open orders."
        return [head, *(order_sentence(o) for o in value[:3]), "Is there anything else I can help with?"]
    return None
