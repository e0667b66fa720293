"""Confirm or revert across the reboot: the rc.d watchdog a new boot environment boots with.

``bectl activate -t`` covers a new system that panics (or hangs and is
power-cycled): the boot blocks used the one-shot, the next boot is the old
BE. It does not cover the commonest bad update: the new BE boots, but its
network, sshd or pf rules are broken, so nobody can reach it to roll back.
So before the reboot the reconciler mounts the new BE and puts into it an
rc.d script (rc.subr style: libexec/rc/rc.subr run_rc_command, rcvar,
load_rc_config; ordered by rcorder after LOGIN and sshd) with its knobs in
/etc/rc.conf.d. At boot /etc/rc runs it with ``faststart``; it starts the
wait under daemon(8) and returns, so the boot goes on. Unless the
reconciler confirms within ``confirm_timeout`` seconds (over a new SSH
connection: proof that a new login works end to end), the wait leaves a
note in the previous BE (bectl mount), re-activates it for good
(``bectl activate PREV``) and reboots: the host comes back by itself.

The decision is made once: both sides ``mkdir`` remote.WATCHDOG_DECIDED
(atomic), the loser reads who won. Confirmed, the reconciler makes the BE
permanent and removes the script and its knobs (``finish_command``).
In-place installs get no watchdog: there is no previous system to go back to.
"""

from __future__ import annotations

import re

from reconciler import remote
from reconciler.transport.command import sh

#: BE names the watchdog's knobs may carry (they go into an rc.conf.d file, sourced by sh).
_BE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")

# The wait, run by daemon(8) as sh -c WAIT reconciler_confirm TIMEOUT PREVIOUS BE.
# It goes between single quotes in the rc.d script: it holds none.
_WAIT = (  # noqa: UP031 - a shell text full of braces: %-format, not format()
    "t=$1; prev=$2; be=$3; d=%(decided)s; log=%(log)s; note=%(note)s; "
    'mkdir -p "${log%%/*}"; i=0; '
    'while [ "$i" -lt "$t" ]; do [ -d "$d" ] && exit 0; sleep 1; i=$((i + 1)); done; '
    'mkdir "$d" 2>/dev/null || exit 0; echo reverted > "$d/by"; '
    'now=$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ); '
    'echo "$now $be not confirmed within ${t}s: reverting to $prev" >> "$log"; '
    'if mnt=$(/sbin/bectl mount "$prev"); then mkdir -p "$mnt${note%%/*}"; '
    'printf "be=%%s\\ntimeout=%%s\\nat=%%s\\n" "$be" "$t" "$now" > "$mnt$note"; '
    '/sbin/bectl umount "$prev"; fi; '
    '/sbin/bectl activate "$prev" >> "$log" 2>&1; /sbin/shutdown -r now >> "$log" 2>&1'
) % {
    "decided": remote.WATCHDOG_DECIDED,
    "log": remote.WATCHDOG_LOG,
    "note": remote.WATCHDOG_REVERTED,
}
assert "'" not in _WAIT

RC_SCRIPT = f"""#!/bin/sh
#
# PROVIDE: {remote.WATCHDOG}
# REQUIRE: LOGIN sshd
# KEYWORD: nojail
#
# Put here by the reconciler before this boot environment's first boot:
# unless the reconciler confirms this boot within {remote.WATCHDOG}_timeout
# seconds, re-activate {remote.WATCHDOG}_previous for good and reboot.
# The reconciler removes this file once it confirmed. The wait runs under
# daemon(8), so the boot goes on.

. /etc/rc.subr

name="{remote.WATCHDOG}"
rcvar="{remote.WATCHDOG}_enable"
start_cmd="{remote.WATCHDOG}_start"
stop_cmd=":"

load_rc_config $name
: ${{{remote.WATCHDOG}_enable:="NO"}}
: ${{{remote.WATCHDOG}_timeout:="300"}}

{remote.WATCHDOG}_start()
{{
	if [ -z "${{{remote.WATCHDOG}_previous}}" ]; then
		warn "no previous boot environment to revert to: not watching"
		return 1
	fi
	echo "Starting {remote.WATCHDOG}: revert to ${{{remote.WATCHDOG}_previous}}" \\
		"unless confirmed within ${{{remote.WATCHDOG}_timeout}}s."
	/usr/sbin/daemon -f -p {remote.WATCHDOG_PIDFILE} /bin/sh -c '{_WAIT}' \\
		{remote.WATCHDOG} "${{{remote.WATCHDOG}_timeout}}" \\
		"${{{remote.WATCHDOG}_previous}}" "${{{remote.WATCHDOG}_be}}"
}}

run_rc_command "$1"
"""


def knobs(be: str, previous: str, timeout: int) -> str:
    """The rc.conf.d file: enable the watchdog of ``be``, reverting to ``previous``."""
    for name in (be, previous):
        if not _BE_NAME.match(name):
            raise ValueError(f"boot environment name {name!r} cannot go into an rc.conf.d file")
    return (
        f'{remote.WATCHDOG}_enable="YES"\n'
        f'{remote.WATCHDOG}_timeout="{int(timeout)}"\n'
        f'{remote.WATCHDOG}_previous="{previous}"\n'
        f'{remote.WATCHDOG}_be="{be}"\n'
    )


_ARM = (
    'be=$1; script=$2; conf=$3; rcd=$4; confd=$5; note=$6; rm -f "$note"; '
    'mnt=$(bectl mount "$be") || exit 1; rc=0; '
    '{ mkdir -p "$mnt${rcd%/*}" "$mnt${confd%/*}" && printf "%s" "$script" > "$mnt$rcd" '
    '&& chmod 555 "$mnt$rcd" && printf "%s" "$conf" > "$mnt$confd"; } || rc=1; '
    'bectl umount "$be" || rc=1; exit $rc'
)


def arm_command(be: str, previous: str, timeout: int) -> list[str]:
    """Mount ``be``, put the watchdog and its knobs into it, unmount it.

    Also drops a revert note left in the running system by an earlier
    watchdog, so a later fallback is never blamed on an old one.
    """
    return sh(
        _ARM,
        be,
        RC_SCRIPT,
        knobs(be, previous, timeout),
        remote.WATCHDOG_SCRIPT,
        remote.WATCHDOG_CONF,
        remote.WATCHDOG_REVERTED,
    )


def confirm_command(word: str = "confirmed") -> list[str]:
    """Decide this boot (``confirmed``, or ``rolled-back`` when the reconciler takes the
    host back itself); prints ``word``, or what whoever decided first wrote."""
    return sh(
        'd=$1; if mkdir "$d" 2>/dev/null; then echo "$2" > "$d/by"; echo "$2"; '
        'else cat "$d/by" 2>/dev/null || echo unknown; fi',
        remote.WATCHDOG_DECIDED,
        word,
    )


def finish_command() -> list[str]:
    """Remove the watchdog and its knobs from the running system (once permanent)."""
    return ["rm", "-f", remote.WATCHDOG_SCRIPT, remote.WATCHDOG_CONF]


def read_note_command() -> list[str]:
    return sh('cat "$1" 2>/dev/null || true', remote.WATCHDOG_REVERTED)


def parse_note(text: str) -> dict[str, str]:
    """``key=value`` lines of a revert note (empty: no note)."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found
