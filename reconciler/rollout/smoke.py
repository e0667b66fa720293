"""The smoke test: checks run inside the new boot environment before anything reboots.

After installworld and etcupdate into the mounted BE, the install job runs
each check chrooted in it with jail(8) (usr.sbin/jail/jail.8: ``jail -c
path=MNT mount.devfs command=CMD ARG...`` creates a jail rooted at MNT,
mounts a devfs at MNT/dev, runs the command, and removes the jail when it
exits; its status is the command's):

- ``sshd -t -f /etc/ssh/sshd_config``: the new world's sshd accepts its own
  configuration (the one way a host that boots fine still locks everyone out);
- ``freebsd-version -u`` equals what the build made: the objdir's built
  ``bin/freebsd-version/freebsd-version`` (bin/freebsd-version/Makefile puts
  newvers.sh's REVISION-BRANCH into it);
- ``sh -n /etc/rc.conf``: rc.conf still parses (rc(8) sources it at boot);
- then the build set's own ``rollout.smoke_checks``, each as ``/bin/sh -c CHECK``.

Any failure fails the job, whose cleanup destroys the new BE (as
tools/build/beinstall.sh does on any failure): the host never reboots.
Each check prints ``smoke: ok: WHAT`` or ``smoke: FAILED: WHAT: OUTPUT``. The plan names
the same checks (reconciler/plan/install.py SMOKE_BUILT_IN).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Shell run inside the install job with $mnt (the BE's mountpoint) and $obj
#: (the build's MAKEOBJDIRPREFIX) set, the set's own checks as "$@".
SCRIPT = r"""
echo ">>> reconciler: smoke test in $be"
smoke() {
  what=$1; shift; cmd=$1; shift
  if out=$(jail -q -c path="$mnt" mount.devfs "command=$cmd" "$@" 2>&1 </dev/null); then
    echo "smoke: ok: $what"
  else
    echo "smoke: FAILED: $what: $(printf '%s' "$out" | head -n 3 | tr '\n' ' ')"
    return 1
  fi
}
failed=0
smoke "sshd -t" /usr/sbin/sshd -t -f /etc/ssh/sshd_config || failed=1
want=
for f in "$obj"/usr/src/*/bin/freebsd-version/freebsd-version; do
  [ -f "$f" ] && want=$(sh "$f" -u) && break
done
got=$(jail -q -c path="$mnt" mount.devfs command=freebsd-version -u 2>&1 </dev/null) || true
if [ -n "$want" ] && [ "$got" = "$want" ]; then
  echo "smoke: ok: freebsd-version -u is $got"
else
  echo "smoke: FAILED: freebsd-version -u: $got, the build made ${want:-no freebsd-version}"
  failed=1
fi
smoke "sh -n /etc/rc.conf" /bin/sh -n /etc/rc.conf || failed=1
for check in "$@"; do
  smoke "$check" /bin/sh -c "$check" || failed=1
done
if [ "$failed" -ne 0 ]; then echo "smoke test failed in $be"; exit 4; fi
"""


def failures(lines: Iterable[str]) -> list[str]:
    """The failed checks a job's log names (``WHAT: OUTPUT``), in order."""
    prefix = "smoke: FAILED: "
    return [line.strip()[len(prefix) :] for line in lines if line.strip().startswith(prefix)]

