"""Turn the bytes of a config file into plain data that remembers where it came from.

The YAML is *composed* (ruamel.yaml's node graph), not constructed, and then
converted here, because that gives us what the library's constructors hide:

* the position of every key and value, so each problem names ``file:line:col``;
* duplicate keys reported with both lines, instead of the last one winning;
* the text of a plain scalar, so ``revision: 0000…`` stays a string rather than
  becoming the integer 0 (a number whose text does not round-trip is kept as text);
* no object construction at all (no tags are executed) and a bound on how many
  nodes aliases may expand to (a "billion laughs" file is refused, not expanded).

The file size limit is applied by the caller before the bytes are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import Problem

#: Files larger than this are refused before they are parsed or even read.
MAX_FILE_BYTES = 1 << 20
#: Converted values per document; aliases can make a small file expand past any size.
MAX_NODES = 20_000

Where = tuple[str | int, ...]
Mark = tuple[int, int]


@dataclass(frozen=True)
class Document:
    """One parsed YAML file: JSON-like ``data`` plus the position of every part of it."""

    path: str
    data: Any
    values: Mapping[Where, Mark] = field(default_factory=dict)
    keys: Mapping[Where, Mark] = field(default_factory=dict)

    def at(self, where: Where) -> Mark:
        """Position (line, column; 1-based) of the value at ``where``, or its nearest parent."""
        while where not in self.values and where:
            where = where[:-1]
        return self.values.get(where, (1, 1))

    def key_at(self, where: Where) -> Mark:
        """Position of the mapping key that names ``where`` (falls back to the value)."""
        return self.keys.get(where) or self.at(where)

    def problem(self, where: Where, message: str, hint: str = "", *, key: bool = False) -> Problem:
        line, column = self.key_at(where) if key else self.at(where)
        return Problem(self.path, line, column, message, hint)


def offset_position(text: str, offset: int) -> Mark:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def decode(path: str, raw: bytes) -> tuple[str | None, list[Problem]]:
    """UTF-8 text of a file, or a problem pointing at the first byte that is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8")
        line, column = offset_position(good, len(good))
        return None, [
            Problem(
                path,
                line,
                column,
                f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}",
                "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
            )
        ]
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM is harmless; YAML and make both do fine without it
    if "\x00" in text:
        line, column = offset_position(text, text.index("\x00"))
        return None, [Problem(path, line, column, "contains a NUL byte", "this is not a text file")]
    return text, []


class _TooBig(Exception):
    pass


class _Converter:
    def __init__(self, path: str) -> None:
        self.path = path
        self.values: dict[Where, Mark] = {}
        self.keys: dict[Where, Mark] = {}
        self.problems: list[Problem] = []
        self.count = 0

    @staticmethod
    def _mark(node: Node) -> Mark:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def convert(self, node: Node, where: Where, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > 64:
            raise _TooBig
        self.values[where] = self._mark(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, where, depth)
        if isinstance(node, SequenceNode):
            return [self.convert(item, (*where, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def _mapping(self, node: MappingNode, where: Where, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                line, column = self._mark(key_node)
                self.problems.append(
                    Problem(
                        self.path,
                        line,
                        column,
                        "a mapping key must be a plain name, not a list or mapping",
                        "write the key as a plain word",
                    )
                )
                continue
            key = str(key_node.value)
            child = (*where, key)
            if key in result:
                first = self.keys[child][0]
                line, column = self._mark(key_node)
                self.problems.append(
                    Problem(
                        self.path,
                        line,
                        column,
                        f"duplicate key {key!r} (first defined on line {first})",
                        "YAML keeps only one of them; remove or merge the duplicate",
                    )
                )
                continue
            self.keys[child] = self._mark(key_node)
            result[key] = self.convert(value_node, child, depth + 1)
        return result

    @staticmethod
    def _scalar(node: ScalarNode) -> Any:
        text = str(node.value)
        tag = str(node.tag)
        if node.style is not None or not tag.startswith("tag:yaml.org,2002:"):
            return text  # quoted, block or explicitly tagged: the text is the value
        kind = tag.rsplit(":", 1)[1]
        if kind == "null":
            return None
        if kind == "bool":
            return text.lower() == "true"
        if kind == "int":
            try:
                number = int(text)
            except ValueError:
                return text
            # Keep text that does not survive as a number (leading zeros, 0o17, ...).
            return number if str(number) == text else text
        if kind == "float":
            try:
                real = float(text)
            except ValueError:
                return text
            return real if repr(real) == text else text
        return text  # str, timestamp, and anything else: its text


def parse(path: str, text: str) -> tuple[Document | None, list[Problem]]:
    """Compose and convert one YAML document; every syntax problem as ``file:line:col``."""
    try:
        node = YAML(typ="rt").compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return None, [
            Problem(path, line, column, f"YAML syntax error: {what}", "fix the YAML syntax here")
        ]
    except YAMLError as exc:
        return None, [Problem(path, 0, 0, f"YAML error: {exc}", "fix the YAML syntax")]
    if node is None:
        return Document(path, None), []
    converter = _Converter(path)
    try:
        data = converter.convert(node, ())
    except _TooBig:
        return None, [
            Problem(
                path,
                1,
                1,
                f"document too large or too deep after expanding aliases (over {MAX_NODES} values)",
                "write the values out instead of nesting aliases",
            )
        ]
    # Duplicate keys are reported, and the first value is kept so every other
    # problem of the file is found in the same run.
    return Document(path, data, converter.values, converter.keys), converter.problems
