"""Check a parsed document against its JSON Schema (Draft 2020-12) and explain failures.

The schemas live in ``schema/`` at the project root; the package reaches them
through ``reconciler/schema`` (a link to that directory in a checkout, copied
as package data into a wheel), with the checkout path as a fallback.

jsonschema's own messages are correct but terse (``'x' does not match
'^...$'``); each failure is turned into one :class:`Problem` at the position of
the offending key or value, with the property's description as the hint.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

from reconciler.config.yamldoc import Document, Where
from reconciler.errors import Problem

SCHEMAS = ("fleet", "buildset")

_SHELL_CHARS = set(";&|$`\\\"'<>(){}[]*?!~#")


def _schema_text(name: str) -> str:
    filename = f"{name}.schema.json"
    packaged = resources.files("reconciler").joinpath("schema", filename)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "schema" / filename
    return checkout.read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (``fleet`` or ``buildset``) as a dict."""
    schema: dict[str, Any] = json.loads(_schema_text(name))
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def _dotted(where: Where) -> str:
    return ".".join(str(part) for part in where) or "(top level)"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def why_not(title: str, value: str) -> str:
    """A short reason why ``value`` fails a string pattern, for the common cases."""
    if value == "":
        return "it is empty"
    for char in value:
        if char in "\n\r\t" or ord(char) < 32 or ord(char) == 127:
            return f"it contains the control character {char!r}"
    bad = sorted({c for c in value if c in _SHELL_CHARS})
    if bad:
        return f"it contains the shell metacharacter(s) {' '.join(bad)}"
    if any(c.isspace() for c in value):
        return "it contains whitespace"
    if title == "absolute path":
        if not value.startswith("/"):
            return "it is not absolute (must start with /)"
        parts = value.split("/")[1:]
        if ".." in parts:
            return "it contains a '..' component"
        if "." in parts:
            return "it contains a '.' component"
        if "" in parts:
            return "it contains an empty component (// or a trailing /)"
    if title == "full commit id":
        if len(value) != 40:
            return f"it has {len(value)} characters, not 40"
        return "it is not lower-case hexadecimal"
    if title == "branch name":
        if value.startswith("-"):
            return "it starts with '-'"
        if ".." in value:
            return "it contains '..'"
    if title == "port origin":
        origin, _, flavor = value.partition("@")
        if "/" not in origin:
            return "it has no '/' between category and port (e.g. www/nginx)"
        if origin.count("/") > 1:
            return "it has more than one '/' (an origin is category/port)"
        if "@" in value and not flavor:
            return "nothing follows '@' (a flavor such as py311 goes there)"
        if "@" in flavor:
            return "it has more than one '@'"
        if origin.split("/")[0] != origin.split("/")[0].lower():
            return "its category has upper-case letters"
    if value.startswith("-"):
        return "it starts with '-'"
    return "it does not have the required form"


def _title(error: ValidationError, root: dict[str, Any]) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "title" in schema:
        return str(schema["title"])
    for definition in root.get("$defs", {}).values():
        if definition is schema:
            return str(definition.get("title", "value"))
    return "value"


def _hint(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    return str(schema.get("description", ""))


def _explain(doc: Document, error: ValidationError, root: dict[str, Any]) -> Iterator[Problem]:
    where: Where = tuple(error.absolute_path)
    name = _dotted(where)
    validator = error.validator
    value = error.instance
    in_names = "propertyNames" in error.absolute_schema_path
    if in_names:
        title = _title(error, root)
        yield doc.problem(
            (*where, str(value)),
            f"{name}: {str(value)!r} is not a valid {title}: {why_not(title, str(value))}",
            _hint(error),
            key=True,
        )
        return
    if validator == "additionalProperties" and isinstance(value, dict):
        known = sorted(error.schema.get("properties", {}))
        for key in value:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            yield doc.problem((*where, key), f"{name}: unknown key {key!r}", hint, key=True)
        return
    if validator == "required" and isinstance(value, dict):
        known = error.schema.get("properties", {})
        unknown = [key for key in value if key not in known]
        for missing in error.validator_value:
            if missing in value or difflib.get_close_matches(missing, unknown, n=1):
                continue  # a misspelt key: its "unknown key, did you mean" says it all
            description = known.get(missing, {}).get("description", "")
            yield doc.problem(
                where, f"{name}: missing required key {missing!r}", f"add it: {description}"
            )
        return
    if validator == "type":
        expected = error.validator_value
        words = " or ".join(
            _TYPE_WORDS.get(str(t), str(t))
            for t in (expected if isinstance(expected, list) else [expected])
        )
        hint = _hint(error)
        if isinstance(value, int | float) and "string" in str(expected):
            hint = "quote the value so YAML reads it as text"
        yield doc.problem(where, f"{name}: must be {words}, not {_kind(value)}", hint)
        return
    if validator in ("pattern", "anyOf") and isinstance(value, str):
        title = _title(error, root)
        yield doc.problem(
            where,
            f"{name}: {value!r} is not a valid {title}: {why_not(title, value)}",
            _hint(error),
        )
        return
    if validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        yield doc.problem(where, f"{name}: {value!r} is not one of {choices}", _hint(error))
        return
    if validator in ("minimum", "maximum"):
        word = "at least" if validator == "minimum" else "at most"
        yield doc.problem(where, f"{name}: must be {word} {error.validator_value}", _hint(error))
        return
    if validator in ("minLength", "minItems", "minProperties") and error.validator_value == 1:
        yield doc.problem(where, f"{name}: must not be empty", _hint(error))
        return
    if validator in ("maxLength", "maxItems", "maxProperties"):
        unit = "characters" if validator == "maxLength" else "entries"
        limit = error.validator_value
        yield doc.problem(where, f"{name}: has more than {limit} {unit}", _hint(error))
        return
    yield doc.problem(where, f"{name}: {error.message}", _hint(error))


def check(doc: Document, schema_name: str) -> list[Problem]:
    """Every schema problem of ``doc``, located and explained."""
    if doc.data is None:
        return [
            Problem(doc.path, 1, 1, "the file is empty", "see example-repo/ for a complete one")
        ]
    root = load_schema(schema_name)
    problems: list[Problem] = []
    for error in sorted(
        _validator(schema_name).iter_errors(doc.data), key=lambda e: [str(p) for p in e.path]
    ):
        problems.extend(_explain(doc, error, root))
    return problems
