#!/bin/sh
# ensure-chromium.sh: make sure Debian's Chromium is at /usr/bin/chromium, for
# the browser test (browser_test.go). Quiet and quick when it is there already;
# otherwise installs the Debian package "chromium" with apt-get (as root, or
# through sudo when not root). Exits non-zero when it is still missing.
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "ensure-chromium: $CHROMIUM is missing, and installing it needs root (or sudo):" >&2
	echo "    apt-get update && apt-get install -y chromium" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: $CHROMIUM is missing and there is no apt-get here;" >&2
	echo "install Chromium so that $CHROMIUM exists (the browser test needs it)." >&2
	exit 1
fi

echo "ensure-chromium: $CHROMIUM is missing; installing Debian's chromium package..." >&2
# env after sudo: sudo drops most of the environment. -q: one line per step
# instead of progress bars; a failure still prints why. The package's
# recommends bring fonts-liberation, which the page's text needs.
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q"
if ! { $APT update && $APT install -y chromium; } >&2; then
	echo "ensure-chromium: apt-get failed (see above)." >&2
fi

if [ ! -x "$CHROMIUM" ]; then
	echo "ensure-chromium: $CHROMIUM is still missing after 'apt-get install -y chromium';" >&2
	echo "the browser test (go test -run Browser .) cannot run without it." >&2
	exit 1
fi
echo "ensure-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)." >&2
