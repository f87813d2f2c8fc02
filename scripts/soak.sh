#!/bin/sh
# soak.sh: the soak test (make soak). Builds wsmill, starts it on a free
# loopback port with short limits, so that every hostile behaviour meets its
# limit within seconds, runs `wsload soak` against it for SOAK_DURATION
# (default 3m); wsload stops the server with SIGTERM (-stop) before its
# last sample of the machine's TCP memory, since an orphaned socket
# outlives its process. Exits non-zero when the soak failed (a good client
# not served, a stall client the server never let go, fds/RSS or TCP
# orphans/memory not back at the baseline) or the server did not stop
# cleanly.
#
#   SOAK_DURATION=1m make soak
#   SOAK_FLAGS='-good 500 -mix hog=100' make soak     # more wsload soak flags
#   SOAK_SERVER=/tmp/wsmill-old make soak             # a wsmill already built
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-go}
DURATION=${SOAK_DURATION:-3m}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wsmill-soak.XXXXXX")
BIN=${SOAK_SERVER:-$TMP/wsmill}
LOG=$TMP/server.log
PID=

cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -KILL "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "${SOAK_SERVER:-}" ] || (cd "$ROOT" && $GO build -o "$BIN" .)

# Port 0: the kernel picks a free port, and the start line logs it.
# The limits match wsload soak's defaults: -interval 1s, -max-message 1 MiB,
# -close-timeout 1s (passed on below all the same). -max-outbound, -sndbuf
# and -rcvbuf are the server's defaults (64 KiB each): the stall clients'
# 4 MiB bursts are far past them.
"$BIN" -addr 127.0.0.1:0 -push-interval 1s -handshake-timeout 2s \
	-idle-timeout 5s -close-timeout 1s -max-message 1048576 >"$LOG" 2>&1 &
PID=$!

ADDR=
i=0
while [ $i -lt 100 ]; do
	ADDR=$(sed -n 's/.*msg="wsmill started" addr=\([0-9.:]*\).*/\1/p' "$LOG")
	[ -n "$ADDR" ] && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$ADDR" ]; then
	echo "soak: wsmill did not start:" >&2
	cat "$LOG" >&2
	exit 1
fi
echo "soak: wsmill pid $PID on $ADDR; wsload soak for $DURATION" >&2

rc=0
# shellcheck disable=SC2086 # SOAK_FLAGS is a list of flags
(cd "$ROOT/bench" && $GO run ./cmd/wsload soak -addr "$ADDR" -pid "$PID" \
	-interval 1s -max-message 1048576 -close-timeout 1s -stop -duration "$DURATION" ${SOAK_FLAGS:-}) || rc=$?

# wsload has stopped it unless it failed first; a zombie takes the signal
# too, and wait collects its exit status either way.
kill -TERM "$PID" 2>/dev/null || true
if ! wait "$PID"; then
	echo "soak: wsmill did not exit cleanly on SIGTERM; its log:" >&2
	tail -n 20 "$LOG" >&2
	[ $rc -ne 0 ] || rc=1
fi
PID=
if [ $rc -ne 0 ]; then
	echo "soak: FAILED (wsload soak exit status $rc); the server's last log lines:" >&2
	tail -n 5 "$LOG" >&2
fi
exit $rc
