"""Tools for the model: schemas derived from the signatures, argument checks, locked tools, JSON results."""

from __future__ import annotations

import inspect
import json

import pytest
from crm_support import seeded_repo

from voicebot.crm.toolkit import ToolRegistry
from voicebot.crm.tools import CRM_TOOLS
from voicebot.crm.verification import CallerContext

LOCKED = {"list_open_orders", "get_order", "get_caller_history", "list_recent_orders", "list_my_appointments",
          "reschedule_appointment", "cancel_appointment"}


@pytest.fixture(scope="module")
def repo():
    return seeded_repo()


@pytest.fixture
def alice(repo):
    return CallerContext.start(repo, "+1 555 010 2030", max_attempts=3)


def test_specs_are_derived_from_the_signatures_and_docstrings():
    specs = {spec["name"]: spec for spec in CRM_TOOLS.specs()}
    assert set(specs) == {"verify_caller", "identify_caller", "list_open_orders", "get_order", "get_caller_history",
                          "create_ticket", "list_free_slots", "book_appointment", "create_lead", "request_callback",
                          "list_recent_orders", "list_my_appointments", "reschedule_appointment", "cancel_appointment"}
    for name, spec in specs.items():
        fn = CRM_TOOLS[name].fn
        params = list(inspect.signature(fn).parameters.values())[1:]
        assert list(spec["parameters"]["properties"]) == [p.name for p in params], name
        required = [p.name for p in params if p.default is inspect.Parameter.empty]
        assert spec["parameters"].get("required", []) == required, name
        assert spec["description"] and spec["description"] in " ".join(inspect.getdoc(fn).split())
        assert all(prop.get("description") for prop in spec["parameters"]["properties"].values()), name
        json.dumps(spec)
    order = specs["get_order"]["parameters"]
    assert order["properties"]["order_number"]["type"] == "string" and order["additionalProperties"] is False
    assert specs["create_ticket"]["parameters"]["properties"]["priority"]["enum"] == ["low", "normal", "high"]
    assert specs["list_free_slots"]["parameters"]["properties"]["date_from"] == {
        "type": "string", "format": "date", "description": "First day to look at (YYYY-MM-DD)."}
    assert {name for name in CRM_TOOLS.names() if CRM_TOOLS[name].requires_verification} == LOCKED


def test_a_new_tool_gets_its_schema_from_its_signature():
    registry = ToolRegistry()

    @registry.tool()
    def add(ctx, a: int, b: int = 2) -> int:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second
                number, on two lines.
        """
        return a + b

    assert registry.specs() == [{"name": "add", "description": "Add two numbers.", "parameters": {
        "type": "object", "additionalProperties": False, "required": ["a"],
        "properties": {"a": {"type": "integer", "description": "The first number."},
                       "b": {"type": "integer", "default": 2, "description": "The second number, on two lines."}}}}]
    assert registry.call("add", {"a": 40}, None) == {"ok": True, "result": 42}
    assert registry.call("add", '{"a": 1, "b": 1}', None) == {"ok": True, "result": 2}


@pytest.mark.parametrize("name", sorted(LOCKED))
def test_locked_tools_refuse_before_verification(alice, name):
    for args in ({"order_number": "10452"} if name == "get_order" else {}, {"nonsense": 1}):
        result = CRM_TOOLS.call(name, args, alice)
        assert result["ok"] is False and result["error"] == "verification_required", result
        assert "10452" not in json.dumps(result)


def test_locked_tools_open_after_verification_and_only_for_that_caller(alice):
    assert CRM_TOOLS.call("verify_caller", {"pin": "one two three four"}, alice)["result"]["verified"] is True
    order = CRM_TOOLS.call("get_order", {"order_number": "10452"}, alice)
    assert order["ok"] and order["result"]["status"] == "shipped" and order["result"]["carrier"] == "UPS"
    assert "customer_id" not in order["result"]
    assert CRM_TOOLS.call("get_order", {"order_number": "one zero four five two"}, alice)["ok"]
    assert [o["number"] for o in CRM_TOOLS.call("list_open_orders", {}, alice)["result"]] == ["10452"]
    assert CRM_TOOLS.call("get_order", {"order_number": "10460"}, alice)["error"] == "not_found"  # Tom's order
    history = CRM_TOOLS.call("get_caller_history", {}, alice)
    assert history["ok"] and history["result"]["name"] == "Alice Johnson"
    json.dumps(history)


def test_lockout_is_reported_by_locked_tools(repo):
    ctx = CallerContext.start(repo, "555-010-2030", max_attempts=2)
    assert CRM_TOOLS.call("verify_caller", {"pin": "1111"}, ctx)["result"]["attempts_left"] == 1
    last = CRM_TOOLS.call("verify_caller", {"pin": "2222"}, ctx)["result"]
    assert last["outcome"] == "locked" and last["verified"] is False
    assert CRM_TOOLS.call("get_order", {"order_number": "10452"}, ctx)["error"] == "locked_out"


@pytest.mark.parametrize("name, args, field", [
    ("create_ticket", {"subject": "Broken"}, "description"),
    ("create_ticket", {"subject": "Broken", "description": "x", "priority": "urgent"}, "priority"),
    ("book_appointment", {"slot_id": "the first one"}, "slot_id"),
    ("list_free_slots", {"date_from": "next week"}, "date_from"),
    ("identify_caller", {"phone_number": ""}, "phone_number"),
    ("request_callback", {"reason": "x", "colour": "blue"}, "colour"),
])
def test_bad_arguments_are_an_error_value(alice, name, args, field):
    result = CRM_TOOLS.call(name, args, alice)
    assert result["ok"] is False and result["error"] == "invalid_arguments"
    assert field in [p["field"] for p in result["problems"]]


def test_unknown_tool_and_broken_json_are_error_values(alice):
    assert CRM_TOOLS.call("delete_everything", {}, alice)["error"] == "unknown_tool"
    assert CRM_TOOLS.call("create_ticket", "{not json", alice)["error"] == "invalid_arguments"
    assert CRM_TOOLS.call("create_ticket", "[1, 2]", alice)["error"] == "invalid_arguments"


def test_open_tools_act_without_verification(repo):
    ctx = CallerContext.start(repo, "+1 999 555 0100")  # not a customer
    ticket = CRM_TOOLS.call("create_ticket", {"subject": "Wrong item", "description": "Got a lamp",
                                              "order_number": "10452"}, ctx)
    assert ticket["ok"] and "order_number" not in ticket["result"]  # an unverified caller links no order
    assert "10452" in ticket["result"]["description"]
    slots = CRM_TOOLS.call("list_free_slots", {"service": "repair", "date_from": "2026-03-04"}, ctx)["result"]
    assert slots["slots"] and all(s["starts_at"] >= "2026-03-04" for s in slots["slots"])
    assert "printer repair" in slots["services"]
    slot_id = slots["slots"][0]["id"]
    assert CRM_TOOLS.call("book_appointment", {"slot_id": slot_id}, ctx)["error"] == "invalid_arguments"  # no name
    booked = CRM_TOOLS.call("book_appointment", {"slot_id": slot_id, "name": "Dana Lee"}, ctx)
    assert booked["ok"] and booked["result"]["slot"]["id"] == slot_id and booked["result"]["phone"] == "+19995550100"
    again = CRM_TOOLS.call("book_appointment", {"slot_id": slot_id, "name": "Eve"}, ctx)
    assert again["error"] == "slot_taken"
    lead = CRM_TOOLS.call("create_lead", {"name": "Dana Lee", "interest": "12 standing desks"}, ctx)
    assert lead["ok"] and repo.db["leads"].get(lead["result"]["reference"])["phone"] == "+19995550100"
    assert CRM_TOOLS.call("request_callback", {"reason": "quote", "phone_number": "not a number"},
                          ctx)["error"] == "invalid_arguments"
    callback = CRM_TOOLS.call("request_callback", {"reason": "quote", "phone_number": "312-555-0199"}, ctx)
    assert repo.db["callbacks"].get(callback["result"]["reference"])["phone"] == "+13125550199"
    assert CRM_TOOLS.call("identify_caller", {"phone_number": "+1 999 000 0000"}, ctx)["error"] == "not_found"


def test_a_number_heard_wrong_is_tried_as_first_heard_and_never_reaches_another_callers_order(repo):
    """Whisper's second hearing of dictated digits can drop one ("10452" -> "1045", "555-010-2030" ->
    "55502030"); ``CallerContext.heard_also`` holds the first hearing, which is tried when the number as heard
    finds nothing, and only among what the verified caller may see."""
    ctx = CallerContext.start(repo, "+1 555 010 2030", max_attempts=3)
    assert CRM_TOOLS.call("verify_caller", {"pin": "1234"}, ctx)["result"]["verified"] is True
    ctx.heard_also = ("Where is my order 10452?",)
    order = CRM_TOOLS.call("get_order", {"order_number": "1045"}, ctx)
    assert order["ok"] and order["result"]["number"] == "10452"
    ctx.heard_also = ("Where is my order 10460?",)  # Tom's: still not found, and reported as asked
    missing = CRM_TOOLS.call("get_order", {"order_number": "1046"}, ctx)
    assert missing["error"] == "not_found" and "10460" not in json.dumps(missing)
    ctx.heard_also = ("Call me back on 312-555-0199.",)
    callback = CRM_TOOLS.call("request_callback", {"reason": "quote", "phone_number": "31255501"}, ctx)
    assert repo.db["callbacks"].get(callback["result"]["reference"])["phone"] == "+13125550199"
    ctx.heard_also = ("Call 312-555-0199 or 312-555-0100.",)  # two numbers: which one is unknown, so asked again
    assert CRM_TOOLS.call("request_callback", {"reason": "quote", "phone_number": "31255501"},
                          ctx)["error"] == "invalid_arguments"
    ctx.heard_also = ()
    assert CRM_TOOLS.call("request_callback", {"reason": "quote", "phone_number": "31255501"},
                          ctx)["error"] == "invalid_arguments"
