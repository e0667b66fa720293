"""The JSON Schemas themselves: valid Draft 2020-12, closed, documented, one set of patterns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from reconciler.config.schema import SCHEMAS, load_schema

ROOT = Path(__file__).resolve().parents[2]


def objects(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield where, schema
        for key, value in schema.items():
            yield from objects(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from objects(value, f"{where}/{index}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((ROOT / "schema" / f"{name}.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert load_schema(name) == schema  # the package reads the same file


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_object_is_closed_and_every_property_described(name: str) -> None:
    for where, obj in objects(load_schema(name)):
        assert "additionalProperties" in obj, where
        # maps keyed by name: hosts, reboot groups
        assert obj["additionalProperties"] is False or where.endswith(
            ("/hosts", "/reboot_groups")
        ), where
        for prop, sub in obj.get("properties", {}).items():
            assert sub.get("description"), f"{where}/{prop}"


def test_shared_definitions_are_identical() -> None:
    fleet, buildset = load_schema("fleet")["$defs"], load_schema("buildset")["$defs"]
    assert fleet == buildset


CASES = {
    "kernconf": (["GENERIC", "GENERIC-NODEBUG", "WEB_2", "a.b"], ["", "-x", "A B", "A;B", "$(id)"]),
    "path": (
        ["/usr/ports", "/var/db/x-1", "/a/b.c/d"],
        ["usr", "/", "/a/../b", "/a/./b", "/a//b", "/a/", "/a b", "/a;b", "/$HOME", "/a`id`"],
    ),
    "branch": (
        ["main", "stable/14", "releng/14.2", "reconciler/status"],
        ["-x", "a..b", "a/", "/a", "a.lock", ".hidden", "a/.b", "a b", "a~1", "a^", "a:b", "a@{1}"],
    ),
    "revision": (["0" * 40, "abcdef0123" * 4], ["0" * 39, "0" * 41, "A" * 40, "g" * 40]),
    "hostname": (["web1", "a", "db-2", "x" * 63], ["Web1", "-a", "a-", "a.b", "a_b", "x" * 64]),
    "address": (
        ["192.0.2.1", "10.0.0.255", "2001:db8::1", "::1", "host.example.org", "builder"],
        ["256.1.1.1", "1.2.3", "a b", "a;b", "host..org", "-host", "[::1]"],
    ),
    "user": (["root", "admin", "_svc", "a-b_1"], ["Root", "1a", "a b", "a" * 33]),
}


@pytest.mark.parametrize("definition", sorted(CASES))
def test_definition_patterns(definition: str) -> None:
    schema = load_schema("fleet")
    validator = Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]})
    good, bad = CASES[definition]
    for value in good:
        assert validator.is_valid(value), value
    for value in bad:
        assert not validator.is_valid(value), value


def test_patterns_are_anchored() -> None:
    for name in SCHEMAS:
        text = json.dumps(load_schema(name))
        for pattern in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', text):
            assert pattern.startswith("^") and pattern.endswith("$"), pattern
