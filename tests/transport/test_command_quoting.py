from __future__ import annotations

import shlex
import subprocess

import pytest

from reconciler.transport.command import quote, sh

NASTY = [
    "a b",
    "$(touch /tmp/pwned)",
    "`id`",
    "x; rm -rf /",
    "'quoted'",
    'dq"',
    "\nnewline",
    "*",
    "-n",
]


def test_quote_round_trips_every_nasty_value() -> None:
    line = quote(["printf", "%s\\0", *NASTY])
    assert shlex.split(line) == ["printf", "%s\\0", *NASTY]


def test_quote_is_inert_in_a_real_shell(tmp_path) -> None:
    marker = tmp_path / "pwned"
    values = [f"$(touch {marker})", f"; touch {marker}", f"`touch {marker}`", f"| touch {marker}"]
    out = subprocess.run(
        ["sh", "-c", quote(["printf", "%s\\n", *values])], capture_output=True, text=True
    )
    assert out.stdout.splitlines() == values
    assert not marker.exists()


def test_quote_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        quote("ls -l")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        quote([])


def test_sh_passes_values_as_positional_parameters(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = f'"; touch {marker}; echo "'
    argv = sh('printf "%s|%s\\n" "$1" "$2"', evil, "$HOME")
    assert argv[:4] == ["sh", "-c", 'printf "%s|%s\\n" "$1" "$2"', "sh"]
    out = subprocess.run(["sh", "-c", quote(argv)], capture_output=True, text=True)
    assert out.stdout == f"{evil}|$HOME\n"
    assert not marker.exists()
