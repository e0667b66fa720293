"""YAML reading: positions, duplicate keys, scalars that must stay text, decoding."""

from __future__ import annotations

from reconciler.config.yamldoc import decode, parse


def test_positions_of_keys_and_values() -> None:
    doc, problems = parse("f.yaml", "a:\n  b: [1, two]\n  c: {d: x}\n")
    assert problems == [] and doc is not None
    assert doc.data == {"a": {"b": [1, "two"], "c": {"d": "x"}}}
    assert doc.at(("a", "b", 1)) == (2, 10)
    assert doc.key_at(("a", "c")) == (3, 3)
    assert doc.at(("a", "c", "d")) == (3, 10)
    assert doc.at(("a", "c", "missing")) == (3, 6)  # nearest parent


def test_scalars_keep_text_that_is_not_a_plain_number() -> None:
    doc, _ = parse(
        "f.yaml",
        "rev: 0000000000000000000000000000000000000000\n"
        "oct: 0o17\nexp: 1e5\nn: 12\nf: 0.5\nyes_: yes\nt: true\nnull_: ~\n"
        "date: 2024-01-02\nq: '12'\n",
    )
    assert doc is not None
    assert doc.data == {
        "rev": "0" * 40,
        "oct": "0o17",
        "exp": "1e5",
        "n": 12,
        "f": 0.5,
        "yes_": "yes",  # YAML 1.2: yes is a string
        "t": True,
        "null_": None,
        "date": "2024-01-02",
        "q": "12",
    }


def test_duplicate_keys_are_reported_first_value_kept() -> None:
    doc, problems = parse("f.yaml", "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert doc is not None and doc.data == {"a": 1, "b": {"c": 1}}
    assert [str(p) for p in problems] == [
        "f.yaml:4:3: duplicate key 'c' (first defined on line 3)"
        " (hint: YAML keeps only one of them; remove or merge the duplicate)",
        "f.yaml:5:1: duplicate key 'a' (first defined on line 1)"
        " (hint: YAML keeps only one of them; remove or merge the duplicate)",
    ]


def test_tags_are_not_executed() -> None:
    doc, problems = parse("f.yaml", "a: !!python/object:os.system echo\n")
    assert problems == [] and doc is not None and doc.data == {"a": "echo"}


def test_syntax_error_position() -> None:
    doc, problems = parse("f.yaml", "a: 1\nb: 'open\n")
    assert doc is None
    assert len(problems) == 1 and problems[0].line == 3
    assert problems[0].message.startswith("YAML syntax error:")


def test_two_documents_are_an_error() -> None:
    doc, problems = parse("f.yaml", "a: 1\n---\nb: 2\n")
    assert doc is None and "YAML syntax error" in problems[0].message
    assert problems[0].line == 2


def test_decode() -> None:
    assert decode("f", "\ufeffa: 1\n".encode()) == ("a: 1\n", [])
    text, problems = decode("f", b"ok\nbad \xc3(\n")
    assert text is None and (problems[0].line, problems[0].column) == (2, 5)
    text, problems = decode("f", b"a\x00b")
    assert text is None and problems[0].message == "contains a NUL byte"
