#!/bin/sh
# Set up what `make demo` and `make test` need on a Debian-like machine:
# OpenSSH's server (the simulated hosts run real sshd), git, util-linux's
# unshare, procps' pgrep, systemd-analyze, bmake, openssl (package signing),
# Chromium and its chromedriver (the status page's tests), and the package in a
# virtual environment at .venv.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v git >/dev/null 2>&1 || need="$need git"
[ -x /usr/sbin/sshd ] || need="$need openssh-server"
command -v ssh >/dev/null 2>&1 || need="$need openssh-client"
command -v unshare >/dev/null 2>&1 || need="$need util-linux"
command -v pgrep >/dev/null 2>&1 || need="$need procps"
# The unit file's test runs `systemd-analyze verify`.
[ -x /usr/bin/systemd-analyze ] || need="$need systemd"
# The FreeBSD port skeleton's test reads its Makefile with BSD make.
command -v bmake >/dev/null 2>&1 || need="$need bmake"
# The simulated pkg signs and verifies package repositories with openssl(1).
[ -x /usr/bin/openssl ] || need="$need openssl"
# The status page's tests drive Debian's headless Chromium through its chromedriver.
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -x /usr/bin/chromedriver ] || need="$need chromium-driver"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages:$need; run as root or: sudo apt-get install$need" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)
if [ ! -f "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/pip install -q -e '.[dev]'
    touch "$stamp"
fi
