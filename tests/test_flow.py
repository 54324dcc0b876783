"""Menus from config: validation at load (through `voicebot check-config`, with file, line and field) and MenuFlow."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.config import Config, ConfigError, DialogConfig, load_config
from voicebot.dialog.flow import (
    KNOWN_TOOLS, MAX_STEPS_TO_HUMAN, TRANSFER_TOOL, FreeForm, Goto, MenuConfig, MenuFlow, NoMatch, Transfer,
    check_escalation_overlap, default_menu,
)

runner = CliRunner()


def write(tmp_path: Path, text: str) -> tuple[Path, str]:
    text = textwrap.dedent(text)
    path = tmp_path / "menu.yaml"
    path.write_text(text)
    return path, text


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def problems(path: Path):
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return {p.field: p for p in info.value.problems}


def menu(**nodes) -> MenuConfig:
    return MenuConfig.model_validate({"start": "main", "nodes": nodes})


# --- the default menu ---------------------------------------------------------------------------------------


def test_default_menu_is_valid_short_and_one_step_from_a_human():
    menu_ = Config().dialog.menu
    assert menu_ == default_menu()
    assert menu_.start == "main" and set(menu_.nodes) == {"main", "orders", "repairs", "sales"}
    assert menu_.steps_to_human() == dict.fromkeys(menu_.nodes, 1)
    assert menu_.reachable() == set(menu_.nodes)
    assert all(len(node.options) <= 4 for node in menu_.nodes.values())
    check_escalation_overlap(menu_, "0", Config().escalation.operator_phrases)


def test_known_tools_match_the_crm_registry():
    tools = pytest.importorskip("voicebot.crm.tools")
    assert KNOWN_TOOLS - {TRANSFER_TOOL} == set(tools.CRM_TOOLS.names())


# --- MenuFlow -----------------------------------------------------------------------------------------------


def test_dtmf_moves_through_the_default_menu():
    flow = MenuFlow(default_menu())
    assert flow.current == "main" and flow.prompt().startswith("What can I help you with?")
    result = flow.match(digit="1")
    assert result == Goto("orders", default_menu().nodes["orders"].prompt)
    assert flow.current == "orders"
    assert "get_order" in flow.allowed_tools() and "create_lead" not in flow.allowed_tools()
    assert flow.allowed_tools()[-1] == TRANSFER_TOOL
    assert flow.match(digit="*") == Goto("main", flow.menu.nodes["main"].prompt)
    assert flow.match(digit="3").node == "sales"
    assert flow.match(digit="7") == NoMatch(flow.menu.nodes["sales"].reprompt)
    assert flow.current == "sales"


def test_operator_option_is_a_transfer():
    flow = MenuFlow(default_menu())
    flow.match(digit="2")
    result = flow.match(digit="0")
    assert isinstance(result, Transfer) and result.reason == "menu option at repairs: pressed 0"
    assert isinstance(MenuFlow(default_menu()).match("Operator!"), Transfer)


def test_free_form_speech_goes_to_the_model_with_the_nodes_tools():
    flow = MenuFlow(default_menu())
    result = flow.match("Where is my order 10452?")
    assert isinstance(result, FreeForm)
    assert result.text == "Where is my order 10452?"
    assert "get_order" in result.tools and TRANSFER_TOOL in result.tools
    assert flow.current == "main"


@pytest.mark.parametrize("said", ["sales", "Sales, please.", "I want to go to sales", "uh, sales"])
def test_a_bare_command_on_a_free_form_node_picks_the_option(said):
    assert MenuFlow(default_menu()).match(said).node == "sales"


@pytest.mark.parametrize("said", ["Cells, please.", "sails", "Uh, sells."])
def test_a_bare_command_whisper_misheard_is_matched_by_its_sound(said):
    """On one machine Whisper heard the sipp caller's "Sales, please." as "Cells, please." and the model offered
    printer repairs; a bare command is matched by its Metaphone key when no option's words are in it."""
    assert MenuFlow(default_menu()).match(said).node == "sales"


def test_sound_alone_never_turns_a_request_into_a_command():
    flow = MenuFlow(default_menu())
    assert isinstance(flow.match("borders"), FreeForm)  # ORTRS is not BRTRS
    assert isinstance(flow.match("Cells in my spreadsheet are wrong"), FreeForm)  # not a bare command


def test_an_order_keyword_inside_a_request_is_not_a_command():
    flow = MenuFlow(default_menu())
    assert isinstance(flow.match("I want to check on my orders from last week"), FreeForm)
    assert flow.match("order").node == "orders"  # singular hears the plural phrase


ROUTER = {
    "main": {"prompt": "Say billing or support.", "reprompt": "Please say billing or support.",
             "options": [{"say": ["billing", "invoice"], "dtmf": "1", "goto": "billing"},
                         {"say": ["support", "help"], "dtmf": 2, "goto": "support"},
                         {"say": ["operator"], "dtmf": "0", "goto": "operator"}]},
    "billing": {"prompt": "Billing.", "free_form": True, "tools": ["create_ticket"],
                "options": [{"say": "operator", "dtmf": "0", "goto": "operator"}]},
    "support": {"prompt": "Support.", "options": [{"say": ["back"], "dtmf": "#", "goto": "main"}]},
}


@pytest.mark.parametrize("said", ["billing", "I have a question about my INVOICE.", "it's about Billing!"])
def test_menu_node_matches_keywords_on_word_boundaries(said):
    flow = MenuFlow(menu(**ROUTER))
    assert flow.match(said) == Goto("billing", "Billing.")
    assert flow.allowed_tools() == ("create_ticket", TRANSFER_TOOL)


@pytest.mark.parametrize("said", ["helpful stuff", "the invoicer", "something else", "", None,
                                  "billing or support"])  # the last matches two options: ambiguous
def test_menu_node_without_one_match_is_a_no_match(said):
    flow = MenuFlow(menu(**ROUTER))
    assert flow.match(said) == NoMatch("Please say billing or support.")
    assert flow.current == "main"
    assert flow.allowed_tools() == ()  # a menu node never reaches the model


def test_back_and_reset():
    flow = MenuFlow(menu(**ROUTER))
    flow.match(digit="2")
    assert flow.current == "support"
    assert flow.back() == Goto("main", "Say billing or support.")
    flow.match(digit="1")
    assert flow.reset().node == "main"
    assert flow.back().node == "main"
    with pytest.raises(KeyError):
        flow.goto("nowhere")
    assert flow.current == "main"


# --- validation through check-config ------------------------------------------------------------------------

THREE_STEPS = """\
    dialog:
      menu:
        start: main
        nodes:
          main:
            prompt: Main menu.
            options:
              - {say: [billing], dtmf: 1, goto: billing}
              - {say: [operator], dtmf: 0, goto: operator}
          billing:
            prompt: Billing.
            options:
              - {say: [invoices], dtmf: 1, goto: invoices}
          invoices:
            prompt: Invoices.
            options:
              - {say: [main menu], dtmf: 1, goto: main}
    """


def test_check_config_rejects_a_node_three_steps_from_a_human(tmp_path):
    path, text = write(tmp_path, THREE_STEPS)
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    line = line_of(text, "billing:", 1)
    assert f"{path}:{line}: dialog.menu.nodes.billing: is 3 steps from a human" in result.output
    assert f"at most {MAX_STEPS_TO_HUMAN} steps" in result.output
    assert "nodes.invoices" not in result.output and "nodes.main" not in result.output  # 2 and 1 steps are fine


def test_a_node_with_no_way_to_a_human_is_rejected(tmp_path):
    path, text = write(tmp_path, THREE_STEPS.replace("goto: main}", "goto: billing}"))
    found = problems(path)
    assert set(found) == {"dialog.menu.nodes.billing", "dialog.menu.nodes.invoices"}
    assert "has no way to a human" in found["dialog.menu.nodes.billing"].message
    assert found["dialog.menu.nodes.invoices"].line == line_of(text, "invoices:", 1)


def test_unknown_goto_tool_and_duplicate_key_name_their_lines(tmp_path):
    path, text = write(tmp_path, """\
        dialog:
          menu:
            nodes:
              main:
                prompt: Main menu.
                free_form: true
                tools: [get_order, get_ordr]
                options:
                  - say: [orders]
                    dtmf: "1"
                    goto: orderz
                  - say: [operator]
                    dtmf: "1"
                    goto: operator
        """)
    found = problems(path)
    assert set(found) == {"dialog.menu.nodes.main.tools.1", "dialog.menu.nodes.main.options.1.dtmf"}
    tool = found["dialog.menu.nodes.main.tools.1"]
    assert tool.line == line_of(text, "tools:") and "unknown tool" in tool.message and "get_ordr" in tool.message
    key = found["dialog.menu.nodes.main.options.1.dtmf"]
    assert key.line == line_of(text, 'dtmf: "1"', 2) and "already used by option 0" in key.message
    # Node errors come first; once they are fixed, the graph is checked.
    fixed = 'dtmf: "0"'.join(text.replace("get_ordr", "create_ticket").rsplit('dtmf: "1"', 1))
    path.write_text(fixed)
    found = problems(path)
    goto = found["dialog.menu.nodes.main.options.0.goto"]
    assert goto.line == line_of(text, "goto: orderz") and "no node with this name" in goto.message
    assert "'orderz'" in goto.message


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"start": "home"}, "dialog.menu.start", "no node with this name"),
    ({"nodes.main.tools": ["get_order"]}, "dialog.menu.nodes.main.tools", "only used on free-form nodes"),
    ({"nodes.lost": {"prompt": "Lost.", "options": [{"dtmf": "0", "goto": "operator"}]}},
     "dialog.menu.nodes.lost", "cannot be reached"),
    ({"nodes.main.options": [{"goto": "operator"}]}, "dialog.menu.nodes.main.options.0", "words to say, a dtmf key"),
    ({"nodes.main.options": [{"say": ["x"], "dtmf": "12", "goto": "operator"}]},
     "dialog.menu.nodes.main.options.0.dtmf", "pattern"),
    ({"nodes.main.options": [{"say": ["yes"], "goto": "operator"}, {"say": ["Yes!"], "goto": "operator"}]},
     "dialog.menu.nodes.main.options.1.say", "already said for option 0"),
    ({"nodes.main.options": [{"dtmf": str(i % 10), "goto": "operator"} for i in range(6)]},
     "dialog.menu.nodes.main.options", "at most 5"),
])
def test_menu_rules(change, field, words):
    data = {"start": "main", "nodes": {"main": {"prompt": "Main.", "options": [{"dtmf": "0", "goto": "operator"}]}}}
    for key, value in change.items():
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[last] = value
    with pytest.raises(ValidationError) as info:
        Config.model_validate({"dialog": {"menu": data}})
    found = {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}
    assert field in found, found
    assert words in found[field]


def test_escalation_key_or_phrase_on_a_non_operator_option_is_rejected():
    router = menu(**{**ROUTER, "main": {**ROUTER["main"], "options": [
        {"say": ["billing agent"], "dtmf": "0", "goto": "billing"},
        {"say": ["support"], "dtmf": "2", "goto": "support"},
        {"say": ["operator"], "dtmf": "9", "goto": "operator"}]}})
    with pytest.raises(ValidationError) as info:
        check_escalation_overlap(router, "0", ["operator", "agent"])
    found = {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}
    assert set(found) == {"dialog.menu.nodes.main.options.0.dtmf", "dialog.menu.nodes.main.options.0.say"}
    assert "escalation key" in found["dialog.menu.nodes.main.options.0.dtmf"]
    assert "'agent'" in found["dialog.menu.nodes.main.options.0.say"]
    check_escalation_overlap(router, "5", ["supervisor"])  # no overlap: no error


def test_check_config_rejects_the_escalation_key_on_a_non_operator_option(tmp_path):
    path, text = write(tmp_path, """\
        dialog:
          menu:
            nodes:
              main:
                prompt: Main menu.
                options:
                  - {say: [billing], dtmf: 0, goto: billing}
                  - {say: [operator], dtmf: 9, goto: operator}
              billing:
                prompt: Billing.
                options:
                  - {say: [operator], dtmf: 9, goto: operator}
        """)
    [problem] = problems(path).values()
    assert problem.field == "dialog.menu.nodes.main.options.0.dtmf"
    assert problem.line == line_of(text, "dtmf: 0, goto: billing") and "escalation key" in problem.message


# --- greeting ----------------------------------------------------------------------------------------------


def test_check_config_rejects_a_greeting_that_hides_the_bot(tmp_path):
    path, text = write(tmp_path, """\
        dialog:
          company: Northwind Supplies
          greeting: Hello{name}, this is Sarah from {company}. How can I help?
        """)
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3: dialog.greeting: " in result.output
    assert "automated assistant" in result.output


@pytest.mark.parametrize("greeting", [
    "Hi, I'm the virtual assistant of {company}.",
    "Hello{name}! You're talking to an AI assistant.",
    "Welcome to {company}. I am a bot, but I can help.",
])
def test_greetings_that_disclose_are_accepted(greeting):
    assert DialogConfig(greeting=greeting).greeting == greeting


def test_greeting_placeholders_are_checked():
    with pytest.raises(ValidationError, match=r"unknown placeholder \{compnay\}"):
        DialogConfig(greeting="Hello, the automated assistant of {compnay} here.")
    with pytest.raises(ValidationError, match="unbalanced braces"):
        DialogConfig(greeting="Hello, the automated assistant of {company here.")


@pytest.mark.parametrize("said, key", [("Two.", "2"), ("2", "2"), ("press two", "2"), ("Option 3, please.", "3"),
                                       ("um, zero", "0"), ("Star.", "*"), ("number one", "1"), ("For.", "4")])
def test_a_turn_that_only_names_a_key_is_that_key(said, key):
    from voicebot.text import spoken_key

    assert spoken_key(said) == key


@pytest.mark.parametrize("said", ["two chairs", "one zero four", "10452", "press", "the second one", "sales"])
def test_anything_more_than_a_key_is_not_a_key(said):
    from voicebot.text import spoken_key

    assert spoken_key(said) is None


def test_spoken_keys_choose_options_only_when_the_session_allows_them():
    flow = MenuFlow(default_menu())
    assert isinstance(flow.match("Two."), FreeForm)  # the bot asked for a number: the words are an answer
    assert flow.match("Two.", spoken_keys=True).node == "repairs"
    assert flow.match("press 9", spoken_keys=True) == NoMatch(flow.reprompt())  # no option 9 at repairs
    assert isinstance(flow.match("zero", spoken_keys=True), Transfer)
    flow.match(digit="2")
    assert flow.match("Star.").node == "main"  # "star" answers no question: the key, whatever the bot asked
