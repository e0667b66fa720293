"""`reconciler init DIR --host NAME=ADDRESS[:PORT] ...`: adopt running hosts.

Writes a new config repo that describes the fleet as it runs now, so the first
``reconciler plan`` shows only what the reconciler itself adds (managed
headers, NFS exports and mounts), not a rebuild of everything:

1. each host's key is read without logging in and its SHA256 fingerprint shown
   (as ``ssh-keygen -l`` prints it) to be confirmed at the prompt (``yes`` or
   the fingerprint itself), or compared with ``--accept-fingerprint
   NAME=SHA256:...``; any other key refuses that host;
2. every host is read over SSH, pinned to the confirmed key, with read-only
   commands (:mod:`reconciler.adopt.reading`);
3. the readings become build sets, kernels, src host and revision
   (:mod:`reconciler.adopt.draft`, rules and reasons there), the 12-hex
   revision of ``uname -v`` is resolved on the src host (:mod:`reconciler.adopt.resolve`);
4. the files are written to a scratch directory beside DIR, validated like any
   config repo, committed (``git init``, one commit by the reconciler's
   identity) and renamed to DIR.

Any problem (a host unreachable or refused, hosts disagreeing on the revision,
a kernel whose config cannot be found) is listed on stderr, nothing is
written, exit 1. DIR must be absent or empty.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from reconciler.adopt import reading as adopt_reading
from reconciler.adopt import render
from reconciler.adopt.draft import Choices, Draft, make_draft
from reconciler.adopt.reading import HostKey, HostReading, Target
from reconciler.adopt.repo import check_target, write_repo
from reconciler.adopt.resolve import Wanted, resolve
from reconciler.commands import SUMMARIES
from reconciler.commands.common import add_settings_arguments, settings_from
from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.rules import HOST_NAME, KERNCONF_NAME
from reconciler.errors import ConfigInvalid, TransportError, UsageError, UserError
from reconciler.ledger import Ledger
from reconciler.statusstore import StatusStore
from reconciler.transport.keyscan import ScannedKey, scan_host_key
from reconciler.transport.ssh import load_key

_DNS = re.compile(
    r"^(?=.{1,253}$)(?![0-9.]+$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
T = TypeVar("T")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init",
        help=SUMMARIES["init"],
        description="Read running FreeBSD hosts over SSH (read-only) and write a config repo "
        "that describes them as they are: build sets, kernels, revision, pinned host keys. "
        "Each host key's fingerprint is confirmed first. Nothing is written unless every "
        "host was read and the result validates.",
    )
    parser.add_argument("dir", metavar="DIR", help="the new config repo (absent or empty)")
    parser.add_argument(
        "--host", action="append", required=True, metavar="NAME=ADDRESS[:PORT]",
        help="a host to adopt (repeat for each; IPv6 with a port as [ADDRESS]:PORT)",
    )  # fmt: skip
    parser.add_argument(
        "--accept-fingerprint", action="append", default=[], metavar="NAME=SHA256:...",
        help="accept NAME's host key without asking when its fingerprint is this one",
    )  # fmt: skip
    parser.add_argument(
        "--build-host", action="append", default=[], metavar="NAME",
        help="the build host of NAME's set (default: a host with a git /usr/src, "
        "else the lexically smallest)",
    )  # fmt: skip
    parser.add_argument(
        "--test-host", action="append", default=[], metavar="NAME",
        help="a test host (default per set: the lexically smallest but the build host)",
    )  # fmt: skip
    parser.add_argument("--src-host", metavar="NAME", help="the host that keeps /usr/src")
    parser.add_argument("--revision", metavar="FULL", help="the 40-hex commit to converge on")
    parser.add_argument("--branch", help="the branch of the revision, e.g. stable/14")
    parser.add_argument("--source-url", metavar="URL", help="where the src host fetches from")
    parser.add_argument(
        "--kernel", action="append", default=[], metavar="IDENT=FILE",
        help="the config file of kernel IDENT, where the host cannot tell",
    )  # fmt: skip
    add_settings_arguments(parser)
    parser.set_defaults(func=run)


# -- the command line -----------------------------------------------------------


def parse_target(spec: str, user: str) -> Target:
    """``NAME=ADDRESS[:PORT]`` (``[v6]:PORT`` for IPv6 with a port); UsageError if malformed."""
    name, eq, where = spec.partition("=")
    if not eq or not HOST_NAME.match(name):
        raise UsageError(
            f"--host {spec!r}: want NAME=ADDRESS[:PORT], NAME a host name like web1 "
            "(lower-case letters, digits, '-')"
        )
    address, port_text = where, ""
    if where.startswith("["):
        address, _, rest = where[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif where.count(":") == 1:
        address, port_text = where.split(":")
    try:
        port = int(port_text) if port_text else 22
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise UsageError(f"--host {spec!r}: port must be a number from 1 to 65535")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not _DNS.match(address):
            raise UsageError(
                f"--host {spec!r}: {address!r} is neither an IP address nor a host name"
            ) from None
    return Target(name, address, port, user)


def _pairs(values: Iterable[str], flag: str, what: str) -> dict[str, str]:
    found = {}
    for value in values:
        key, eq, rest = value.partition("=")
        if not eq or not key or not rest:
            raise UsageError(f"{flag} {value!r}: want {what}")
        found[key] = rest
    return found


def _choices(args: argparse.Namespace) -> Choices:
    kernels = {}
    for ident, path in _pairs(args.kernel, "--kernel", "IDENT=FILE").items():
        if not KERNCONF_NAME.match(ident):
            raise UsageError(f"--kernel {ident}: not a kernel config name")
        try:
            kernels[ident] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--kernel {ident}={path}: cannot read: {exc}") from exc
    if args.revision is not None and not re.fullmatch(r"[0-9a-f]{40}", args.revision):
        raise UsageError(f"--revision {args.revision!r}: want the full 40-hex commit")
    return Choices(
        build_hosts=tuple(args.build_host),
        test_hosts=tuple(args.test_host),
        src_host=args.src_host,
        revision=args.revision,
        kernels=kernels,
    )


# -- talking to the hosts -------------------------------------------------------


def _each(items: list[Any], work: Callable[[Any], T], parallel: int) -> list[T | UserError]:
    def guarded(item: Any) -> T | UserError:
        try:
            return work(item)
        except UserError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items)))) as pool:
        return list(pool.map(guarded, items))


def _why(exc: UserError) -> str:
    return exc.described if isinstance(exc, TransportError) else str(exc)


def ask_stdin(prompt: str) -> str | None:
    """One answer from stdin (None at its end); the prompt goes to stderr, like ssh's."""
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    return line.strip() if line else None


def confirm(
    target: Target, key: ScannedKey, given: str | None, ask: Callable[[str], str | None]
) -> str | None:
    """None when the key is accepted, else why it was refused."""
    if given is not None:
        if given == key.fingerprint:
            return None
        return (
            f"{target.name}: host key {key.label} {key.fingerprint} offered by "
            f"{target.address}:{target.port} is not the {given} given with "
            "--accept-fingerprint: refused"
        )
    public = f"/etc/ssh/ssh_host_{key.label.lower()}_key.pub"
    print(
        f"The authenticity of host '{target.name} ({target.address}:{target.port})' can't be "
        f"established.\n{key.label} key fingerprint is {key.fingerprint}\n"
        f"Compare it on the host's console: ssh-keygen -lf {public} prints {key.keygen_line}",
        file=sys.stderr,
    )
    for _ in range(3):
        answer = ask(f"Adopt {target.name} with this key (yes/no/[fingerprint])? ")
        if answer is None:
            return f"{target.name}: no answer at the prompt: key refused"
        if answer.lower() == "yes" or answer == key.fingerprint:
            return None
        if answer.lower() == "no":
            return f"{target.name}: host key refused at the prompt"
        if answer.startswith("SHA256:"):
            return f"{target.name}: the fingerprint typed is not the host's: key refused"
        print("Please type 'yes', 'no' or the fingerprint.", file=sys.stderr)
    return f"{target.name}: no clear answer at the prompt: key refused"


def _fail(problems: list[str], directory: Path) -> UserError:
    for problem in problems:
        print(f"reconciler: {problem}", file=sys.stderr)
    count = len(problems)
    return UserError(f"{count} problem{'s' if count != 1 else ''}; nothing written to {directory}")


def _summary(draft: Draft, directory: Path, commit: str, source: Any) -> str:
    lines = [f"Adopted {sum(len(s.hosts) for s in draft.sets)} hosts into {directory} "
             f"(commit {commit[:12]}):"]  # fmt: skip
    for s in draft.sets:
        roles = ", ".join(
            h.name
            + (" (build)" if h.name == s.build_host else "")
            + (" (test)" if h.name in s.test_hosts else "")
            for h in s.hosts
        )
        lines.append(f"  build set {s.name}: {roles}; {s.arch}, {s.install}")
    for k in draft.kernels:
        lines.append(f"  kernels/{k.ident}: {k.why}")
    lines.append(
        f"  source: {source.branch} @ {source.revision[:12]} ({source.revision_why}); "
        f"src host {draft.src_host}"
    )
    lines += [f"  warning: {w}" for w in draft.warnings]
    lines.append(f"Next: reconciler validate {directory}; reconciler plan {directory}")
    return "\n".join(lines)


def _targets(args: argparse.Namespace, user: str) -> list[Target]:
    targets = [parse_target(spec, user) for spec in args.host]
    names = [t.name for t in targets]
    places = [(t.address.lower(), t.port) for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1}) + sorted(
        {f"{a}:{p}" for a, p in places if places.count((a, p)) > 1}
    )
    if twice:
        raise UsageError(f"--host: {', '.join(twice)} given more than once")
    return targets


def _confirmed_keys(
    targets: list[Target],
    given: dict[str, str],
    ask: Callable[[str], str | None],
    timeout: float,
    parallel: int,
) -> tuple[dict[str, HostKey], list[str]]:
    """Each host's key, read and confirmed; or why not (no prompt once a host is unreachable)."""

    def scan(t: Target) -> ScannedKey:
        return scan_host_key(t.address, t.port, name=t.name, timeout=timeout)

    scanned = _each(targets, scan, parallel)
    problems = [_why(s) for s in scanned if isinstance(s, UserError)]
    if problems:
        return {}, problems
    keys: dict[str, HostKey] = {}
    for target, found in zip(targets, scanned, strict=True):
        assert isinstance(found, ScannedKey)
        refused = confirm(target, found, given.get(target.name), ask)
        if refused:
            problems.append(refused)
        keys[target.name] = HostKey(found.keytype, found.base64, found.fingerprint)
    return keys, problems


def run(args: argparse.Namespace, ask: Callable[[str], str | None] = ask_stdin) -> int:
    directory = Path(args.dir).expanduser().absolute()
    settings = settings_from(args)
    targets = _targets(args, settings.ssh_user or "root")
    given = _pairs(args.accept_fingerprint, "--accept-fingerprint", "NAME=SHA256:...")
    unknown = sorted(set(given) - {t.name for t in targets})
    if unknown:
        raise UsageError(f"--accept-fingerprint for {', '.join(unknown)}: no such --host")
    choices = _choices(args)
    check_target(directory)
    client = load_key(settings.ssh_key)
    timeout = settings.connect_timeout
    keys, problems = _confirmed_keys(targets, given, ask, timeout, settings.parallel)
    if problems:
        raise _fail(problems, directory)
    conns = {t.name: adopt_reading.connection(t, keys[t.name], client, timeout) for t in targets}
    try:
        read = _each(
            targets, lambda t: adopt_reading.read(conns[t.name], t, keys[t.name]), settings.parallel
        )
        problems = [_why(r) for r in read if isinstance(r, UserError)]
        readings = [r for r in read if isinstance(r, HostReading)]
        draft, more = make_draft(readings, choices) if not problems else (None, [])
        if draft is None:
            raise _fail(problems + more, directory)
        src = draft.host(draft.src_host)
        # newvers.sh names the branch unless HEAD was detached at build time.
        branches = {r.versions.source.branch for r in readings if r.versions.source}
        named = sorted(b for b in branches if b)
        wanted = Wanted(args.revision, args.branch, args.source_url)
        try:
            source, problems = resolve(
                conns[src.name], src, draft.hash12, named[0] if len(named) == 1 else None, wanted
            )
        except TransportError as exc:
            source, problems = None, [exc.described]
        if source is None:
            raise _fail(problems, directory)
    finally:
        for conn in conns.values():
            conn.close()
    message = f"Adopt {len(readings)} hosts as they run (reconciler init)\n\n" + "".join(
        f"{s.name}: {', '.join(h.name for h in s.hosts)}\n" for s in draft.sets
    )
    files = render.files(draft, source, datetime.now(UTC).strftime("%Y-%m-%d"))
    try:
        commit = write_repo(directory, files, message, settings.branch)
    except ConfigInvalid as exc:
        problems = ["the adopted repo does not validate:", *(str(p) for p in exc.problems)]
        raise _fail(problems, directory) from exc
    # The fleet as it runs is the baseline: its build counts as installed and
    # tested, so the first plan shows only what the reconciler adds.
    config = load_config(directory, commit)
    store = StatusStore(Ledger(directory, config.policy.status_branch))
    for bs in config.buildsets:
        store.adopt(bs.name, commit, build_id(config, bs), (h.name for h in bs.hosts))
    print(_summary(draft, directory, commit, source))
    return 0
