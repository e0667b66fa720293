"""Every parser against recorded output in FreeBSD's real formats.

A fixture ``fixtures/<fact>/<case>.json`` holds ``command`` (the command
lines the fact sends, checked against its probes), ``output`` (stdout, or
stdout per probe), optional ``exit`` (status, or per probe; default 0),
optional ``args`` and the expected ``fact`` (keys listed are compared) and
``properties`` (derived values).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.facts import (
    boot,
    bootenv,
    boottime,
    etcfiles,
    installjobs,
    jobs,
    kernconf,
    loader,
    marker,
    mounts,
    objtree,
    packages,
    pkgsets,
    ports,
    preflight,
    source,
    versions,
)
from reconciler.facts.codec import to_jsonable
from reconciler.facts.probe import Output, Probe
from reconciler.transport.command import quote

FIXTURES = Path(__file__).parent / "fixtures"

Parser = Callable[[dict[str, Output], dict[str, Any]], Any]
FACTS: dict[str, tuple[Callable[[dict[str, Any]], tuple[Probe, ...]], Parser]] = {
    "versions": (lambda a: versions.PROBES, lambda o, a: versions.parse(o)),
    "boot": (lambda a: boot.PROBES, lambda o, a: boot.parse(o)),
    "marker": (lambda a: marker.PROBES, lambda o, a: marker.parse(o)),
    "bootenv": (lambda a: bootenv.PROBES, lambda o, a: bootenv.parse(o)),
    "etcfiles": (lambda a: etcfiles.PROBES, lambda o, a: etcfiles.parse(o)),
    "source": (lambda a: source.PROBES, lambda o, a: source.parse(o)),
    "kernconf": (
        lambda a: kernconf.probes(a["arch"], a["custom"]),
        lambda o, a: kernconf.parse(o, a["arch"], a["custom"]),
    ),
    "objtree": (lambda a: objtree.PROBES, lambda o, a: objtree.parse(o, a["build_running"])),
    "mounts": (lambda a: mounts.PROBES, lambda o, a: mounts.parse(o)),
    "exports": (lambda a: mounts.EXPORTS_PROBES, lambda o, a: mounts.parse_exports(o)),
    "jobs": (lambda a: jobs.PROBES, lambda o, a: jobs.parse(o)),
    "boottime": (lambda a: boottime.PROBES, lambda o, a: boottime.parse(o)),
    "installjobs": (lambda a: installjobs.PROBES, lambda o, a: installjobs.parse(o)),
    "preflight-src": (
        lambda a: preflight.src_probes(a["revision"]),
        lambda o, a: preflight.parse_src(o, a["revision"]),
    ),
    "preflight-obj": (lambda a: preflight.BUILD_PROBES, lambda o, a: preflight.parse_obj(o)),
    "preflight-bootpool": (
        lambda a: preflight.BE_PROBES,
        lambda o, a: preflight.parse_boot_pool(o),
    ),
    "preflight-knobs": (lambda a: preflight.KNOB_PROBES, lambda o, a: preflight.parse_knobs(o)),
    "loader": (lambda a: loader.probes(a["arch"]), lambda o, a: loader.parse(o, a["arch"])),
    "packages": (lambda a: packages.PROBES, lambda o, a: packages.parse(o)),
    "ports": (
        lambda a: ports.probes(a["tree"], a["revision"], tuple(a["origins"])),
        lambda o, a: ports.parse(o),
    ),
    "pkgsets": (lambda a: pkgsets.PROBES, lambda o, a: pkgsets.parse(o)),
}

CASES = sorted(FIXTURES.glob("*/*.json"))


def test_every_fact_has_fixtures() -> None:
    assert {p.parent.name for p in CASES} == set(FACTS)


def _derived(value: Any) -> Any:
    if hasattr(value, "name") and not isinstance(value, str):
        return value.name  # a boot environment stands for its name
    return value


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture(path: Path) -> None:
    case = json.loads(path.read_text())
    make_probes, parse = FACTS[path.parent.name]
    args = case.get("args", {})
    probes = make_probes(args)
    if case["command"] is not None:
        assert [quote(p.argv) for p in probes] == case["command"]
    raw_out, raw_exit = case["output"], case.get("exit", 0)
    outputs = {}
    for probe in probes:
        out = raw_out[probe.name] if isinstance(raw_out, dict) else raw_out
        code = raw_exit[probe.name] if isinstance(raw_exit, dict) else raw_exit
        outputs[probe.name] = Output(code, out)
    fact = parse(outputs, args)
    got = to_jsonable(fact)
    expected = case["fact"]
    if isinstance(expected, dict) and isinstance(got, dict):
        assert {k: got.get(k, "<missing>") for k in expected} == expected
    else:
        assert got == expected
    for name, value in case.get("properties", {}).items():
        assert _derived(getattr(fact, name)) == value, name
