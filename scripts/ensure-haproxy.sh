#!/bin/sh
# ensure-haproxy.sh: make sure HAProxy is on PATH, for the HAProxy test
# (haproxy_test.go, which runs deploy/haproxy.cfg in front of two wsmill
# processes). Quiet and quick when it is there already; otherwise installs
# the Debian package "haproxy" with apt-get (as root, or through sudo -n when
# not root). Exits non-zero when it is still missing.
set -eu

# /usr/sbin is not on every non-root PATH; the test looks there too.
if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO="sudo -n"
else
	echo "ensure-haproxy: haproxy is missing, and installing it needs root (or passwordless sudo):" >&2
	echo "    apt-get update && apt-get install -y haproxy" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-haproxy: haproxy is missing and there is no apt-get here;" >&2
	echo "install HAProxy 2.4 or later so that 'haproxy' is on PATH (the HAProxy test needs it)." >&2
	exit 1
fi

echo "ensure-haproxy: haproxy is missing; installing Debian's haproxy package..." >&2
# env after sudo: sudo drops most of the environment. -q: one line per step
# instead of progress bars; a failure still prints why. Debian's package
# also starts haproxy.service with its default config (no wsmill frontend):
# the test runs its own haproxy on free ports, so that does not matter.
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q"
if ! { $APT update && $APT install -y haproxy; } >&2; then
	echo "ensure-haproxy: apt-get failed (see above)." >&2
fi

# /usr/sbin may be missing from a non-root PATH.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
	echo "ensure-haproxy: haproxy is still missing after 'apt-get install -y haproxy';" >&2
	echo "the HAProxy test (go test -run HAProxy .) cannot run without it." >&2
	exit 1
fi
echo "ensure-haproxy: installed $(haproxy -v 2>/dev/null | head -n 1 || /usr/sbin/haproxy -v | head -n 1)." >&2
