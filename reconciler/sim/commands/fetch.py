"""fetch(1): usr.bin/fetch/fetch.c and fetch.1, the HTTP part a health probe uses.

``fetch [-q] [-o file] [-T seconds] URL ...``: retrieves each URL (http and
https through libfetch; redirects followed) into ``file`` (``-o -``: stdout).
Exit status 0 when every URL was fetched, 1 when one failed (fetch.1 EXIT
STATUS). A failure is one ``fetch: URL: REASON`` line on stderr (fetch.c,
``warnx("%s: %s", URL, fetchLastErrString)``): an HTTP error answer gives the
status's reason phrase (libfetch http.c, ``http_seterr``: "Not Found",
"Internal Server Error", ...), a refused or unreachable connection the
system's error string ("Connection refused"). ``-T`` bounds the transfer;
when it runs out fetch says ``fetch: transfer timed out`` and fails. Simulated
with Python's HTTP client on the shared loopback; without ``-q`` it prints
no progress line (fetch's stat_end format is not simulated).
"""

from __future__ import annotations

import getopt
import http.client
import sys
import urllib.error
import urllib.request
from http import HTTPStatus

from reconciler.sim.commands.host import Host

USAGE = (
    "usage: fetch [-146AadFlMmnPpqRrsUv] [-B bytes] [-i file] [-N file] [-o file]\n"
    "       [-S bytes] [-T seconds] [-w seconds] URL ..."
)


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown HTTP error"


def _fetch(url: str, output: str, timeout: float | None) -> str | None:
    """None when fetched, else fetch's complaint (without the ``fetch: `` prefix)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (fetch fetches)
            body = answer.read()
    except urllib.error.HTTPError as exc:
        return f"{url}: {_phrase(exc.code)}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return "transfer timed out"
        if isinstance(reason, OSError) and reason.strerror:
            return f"{url}: {reason.strerror}"
        return f"{url}: {reason}"
    except TimeoutError:
        return "transfer timed out"
    except (OSError, http.client.HTTPException) as exc:
        return f"{url}: {exc}"
    if output == "-":
        sys.stdout.buffer.write(body)
    else:
        with open(output, "wb") as handle:
            handle.write(body)
    return None


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, urls = getopt.getopt(argv, "146AadFlMmnPpqRrsUvB:i:N:o:S:T:w:")
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return 1
    flags = dict(opts)
    if not urls:
        print(USAGE, file=sys.stderr)
        return 1
    timeout = float(flags["-T"]) if flags.get("-T", "").isdigit() else None
    status = 0
    for url in urls:
        output = flags.get("-o") or url.rstrip("/").rsplit("/", 1)[-1] or "fetch.out"
        problem = _fetch(url, output, timeout or None)
        if problem is not None:
            print(f"fetch: {problem}", file=sys.stderr)
            status = 1
    return status
