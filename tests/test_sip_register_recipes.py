"""The README's PBX recipes, checked for structure (Debian has no Asterisk to load them into; see the README).

Each ```ini block under "### PBX recipes" is read as Asterisk reads pjsip.conf: ``[name]`` sections (a name may
repeat with a different ``type=``), ``key=value`` lines, ``;`` comments. Each section must have a known
``type``, use only keys that type has (the subset these recipes need, from Asterisk's pjsip documentation), and
its ``auth=``, ``aors=`` and ``endpoint=`` must name sections of the right type. The yaml block must load as a
voicebot config. A checker that can fail: the broken variants at the end must be refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from voicebot.config import Config

README = Path(__file__).resolve().parent.parent / "README.md"
KEYS = {
    "endpoint": {"type", "context", "disallow", "allow", "auth", "outbound_auth", "aors", "direct_media",
                 "rewrite_contact", "media_encryption", "transport", "from_user", "from_domain", "dtmf_mode"},
    "auth": {"type", "auth_type", "username", "password", "realm"},
    "aor": {"type", "max_contacts", "remove_existing", "qualify_frequency", "contact", "default_expiration"},
    "identify": {"type", "endpoint", "match"},
    "registration": {"type", "server_uri", "client_uri", "outbound_auth", "transport", "retry_interval"},
    "transport": {"type", "protocol", "bind", "cert_file", "priv_key_file", "method"},
}
REFERENCES = {"auth": "auth", "outbound_auth": "auth", "aors": "aor", "endpoint": "endpoint"}


def recipe_blocks(kind: str) -> list[str]:
    text = README.read_text()
    section = text[text.index("### PBX recipes"):]
    section = section[:section.index("\n### ", 5)]
    return re.findall(rf"```{kind}\n(.*?)```", section, re.DOTALL)


def pjsip_problems(text: str) -> list[str]:
    """What Asterisk's pjsip.conf loader (res_sorcery_config) would refuse or misread, for these recipes."""
    sections: list[tuple[str, dict[str, str], int]] = []
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]\s]+)\](\([^)]*\))?", line)
        if header:
            sections.append((header.group(1), {}, number))
        elif "=" in line and sections and re.fullmatch(r"[a-z_]+", line.split("=", 1)[0].strip()):
            key, value = (part.strip() for part in line.split("=", 1))
            if key in sections[-1][1]:
                problems.append(f"line {number}: {key} given twice in [{sections[-1][0]}]")
            sections[-1][1][key] = value
        else:
            problems.append(f"line {number}: neither [section] nor key=value: {raw!r}")
    by_type: dict[str, set[str]] = {}
    for name, options, number in sections:
        kind = options.get("type")
        if kind not in KEYS:
            problems.append(f"line {number}: [{name}] has type={kind!r}")
            continue
        if name in by_type.setdefault(kind, set()):
            problems.append(f"line {number}: a second [{name}] of type {kind}")
        by_type[kind].add(name)
        for key in options.keys() - KEYS[kind]:
            problems.append(f"line {number}: [{name}] type={kind} has no option {key}")
    for name, options, number in sections:
        for key, kind in REFERENCES.items():
            if key in options and options.get("type") in KEYS:
                for target in options[key].split(","):
                    if target.strip() not in by_type.get(kind, set()):
                        problems.append(f"line {number}: [{name}] {key}={target.strip()} names no {kind} section")
    return problems


def test_the_asterisk_recipes_are_well_formed():
    blocks = recipe_blocks("ini")
    assert len(blocks) == 2, "expected the extension and the trunk recipe"
    for block in blocks:
        assert pjsip_problems(block) == [], block
    extension, trunk = blocks
    assert "type=auth" in extension and "type=identify" in trunk


def test_the_generic_trunk_recipe_is_a_valid_voicebot_config():
    [block] = recipe_blocks("yaml")
    config = Config.model_validate(yaml.safe_load(block))
    [account] = config.sip.accounts
    assert account.transport == "tls" and "tls" in config.sip.transports and account.password_env


def test_the_checker_refuses_broken_recipes():
    extension = recipe_blocks("ini")[0]
    assert any("names no auth section" in p for p in pjsip_problems(extension.replace("[201-auth]", "[201-x]")))
    assert any("has no option" in p for p in pjsip_problems(extension.replace("direct_media=", "directmedia=")))
    assert any("type='endpont'" in p for p in pjsip_problems(extension.replace("type=endpoint", "type=endpont")))
    assert any("neither" in p for p in pjsip_problems(extension + "\nallow ulaw\n"))
