"""What a simulated world's /etc has for rc(8): rc.subr and a stock sshd_config.

``RC_SUBR`` is the part of libexec/rc/rc.subr that rc.d scripts call, written
for the simulator (not FreeBSD's text): ``load_rc_config NAME`` reads
/etc/rc.conf, then /etc/rc.conf.d/NAME and /usr/local/etc/rc.conf.d/NAME
(as rc.subr's load_rc_config does); ``checkyesno VAR`` (YES/TRUE/ON/1 and
NO/FALSE/OFF/0, case-insensitive; anything else warns and is false);
``run_rc_command ARG`` with rc.subr's prefixes (``rc_arg`` is the verb without
it): ``fast`` (what /etc/rc passes at boot: ``faststart``; sets rc_fast),
``one`` (skip the rcvar check), ``force``, ``quiet``;
the rcvar check (a disabled script does nothing for start at boot, and says
``Cannot 'start' NAME. Set NAME_enable to YES ...`` otherwise); verbs start,
stop, status, restart, rcvar, enabled, each running ``${verb}_cmd`` when the
script sets one, else the ``command`` (start) or a pidfile check (status).

The boot (``START_RC`` in reconciler/sim/prepare.py's start script) runs the
world's rc.d scripts as /etc/rc does: every executable file of /etc/rc.d and
/usr/local/etc/rc.d, in ``rcorder -s nostart`` order, sourced in a subshell
with ``faststart`` as $1 (rc.subr's run_rc_script).
"""

from __future__ import annotations

RC_SUBR = r"""# rc.subr (simulated): the functions rc.d scripts call. See reconciler/sim/rcsubr.py.
warn() { echo "${name:-rc}: WARNING: $*" >&2; }
err() { _code=$1; shift; echo "${name:-rc}: ERROR: $*" >&2; exit "$_code"; }
checkyesno()
{
	eval _value=\$${1}
	case $_value in
	[Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;;
	[Nn][Oo]|[Ff][Aa][Ll][Ss][Ee]|[Oo][Ff][Ff]|0) return 1 ;;
	*) warn "\$${1} is not set properly - see rc.conf(5)."; return 1 ;;
	esac
}
load_rc_config()
{
	[ -r /etc/rc.conf ] && . /etc/rc.conf
	for _d in /etc /usr/local/etc; do
		[ -n "$1" ] && [ -r "$_d/rc.conf.d/$1" ] && . "$_d/rc.conf.d/$1"
	done
	return 0
}
run_rc_command()
{
	_arg=$1; _prefix=
	case $_arg in
	fast*) _prefix=fast; _arg=${_arg#fast}; rc_fast=yes; rc_quiet=yes ;;
	force*) _prefix=force; _arg=${_arg#force}; rc_force=yes ;;
	one*) _prefix=one; _arg=${_arg#one} ;;
	quiet*) _prefix=quiet; _arg=${_arg#quiet}; rc_quiet=yes ;;
	esac
	rc_arg=$_arg
	case $_arg in
	rcvar) eval "_value=\${$rcvar}"; echo "$rcvar=\"$_value\""; return 0 ;;
	enabled) checkyesno "$rcvar"; return $? ;;
	esac
	if [ -n "$rcvar" ] && [ "$_prefix" != one ] && [ "$_prefix" != force ] \
		&& ! checkyesno "$rcvar"; then
		case $_prefix in
		fast|quiet) ;;
		*) echo "Cannot '$_arg' $name. Set $rcvar to YES in /etc/rc.conf" \
			"or use 'one$_arg' instead of '$_arg'." >&2 ;;
		esac
		return 0
	fi
	eval _cmd=\$${_arg}_cmd
	case $_arg in
	start|stop|status)
		if [ -n "$_cmd" ]; then eval "$_cmd"; return $?; fi ;;
	restart)
		run_rc_command "${_prefix}stop"; run_rc_command "${_prefix}start"; return $? ;;
	*) echo "$0: unknown directive '$1'." >&2; return 1 ;;
	esac
	case $_arg in
	start) [ -n "$command" ] && $command $command_args ;;
	status)
		if [ -n "$pidfile" ] && pgrep -F "$pidfile" >/dev/null 2>&1; then
			echo "$name is running as pid $(cat "$pidfile")."
		else
			echo "$name is not running."; return 1
		fi ;;
	stop) [ -n "$pidfile" ] && pkill -F "$pidfile" ;;
	esac
}
"""

#: The world's stock /etc/ssh/sshd_config (FreeBSD's is all comments but the
#: sftp subsystem); the one host key the simulated world has is named.
SSHD_CONFIG = (
    "#\t$OpenBSD: sshd_config,v 1.104 2021/07/02 05:11:21 dtucker Exp $\n"
    "# The simulated world's stock sshd_config (sshd -t checks it in a smoke test).\n"
    "HostKey /etc/ssh/ssh_host_ed25519_key\n"
    "PermitRootLogin prohibit-password\n"
    "Subsystem\tsftp\t/usr/libexec/sftp-server\n"
)

#: Shell for the start script, run before sshd: /etc/rc's loop over rc.d scripts.
START_RC = r"""
set +eu  # rc.d scripts are not written for set -eu
# rc(8): the world's rc.d scripts, in rcorder order, each sourced with faststart.
rcfiles=
for f in /etc/rc.d/* /usr/local/etc/rc.d/*; do
    [ -f "$f" ] && [ -x "$f" ] && rcfiles="$rcfiles $f"
done
if [ -n "$rcfiles" ]; then
    for f in $(/sbin/rcorder -s nostart $rcfiles 2>/dev/null); do
        ( set -- faststart; . "$f" ) </dev/null || echo "sim: /etc/rc: $f faststart failed" >&2
    done
fi
set -eu
"""
