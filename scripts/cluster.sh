#!/bin/sh
# cluster.sh (make cluster): NATS, two wsmill instances bridged over it and
# HAProxy in front, on this machine, until Ctrl-C. Open
# https://localhost:8443/ in two tabs (a self-signed certificate: accept it
# once); HAProxy's leastconn puts them on different instances, and the
# room chat joins them through NATS.
#   NATS            127.0.0.1:4222  (cmd/natsd: nats-server embedded)
#   wsmill ws1/ws2  127.0.0.1:8081, 127.0.0.1:8082  (-nats nats://127.0.0.1:4222)
#   HAProxy         *:8443 (TLS), deploy/haproxy.cfg
set -eu
GO=${GO:-go}
sh scripts/ensure-haproxy.sh
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
dir=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

$GO build -o "$dir/wsmill" .
$GO build -o "$dir/natsd" ./cmd/natsd
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
cat "$dir/cert.pem" "$dir/key.pem" >"$dir/wsmill.pem"

"$dir/natsd" -port 4222 & pids="$pids $!"
"$dir/wsmill" -addr 127.0.0.1:8081 -metrics-addr 127.0.0.1:9181 -nats nats://127.0.0.1:4222 & pids="$pids $!"
"$dir/wsmill" -addr 127.0.0.1:8082 -metrics-addr 127.0.0.1:9182 -nats nats://127.0.0.1:4222 & pids="$pids $!"
WSMILL_HAPROXY_TEST=1 WSMILL_MAXCONN=5000 WSMILL_PEM="$dir/wsmill.pem" WSMILL_BIND="*:8443" \
	"$HAPROXY" -f deploy/haproxy.cfg -db & pids="$pids $!"
echo "cluster up: open https://localhost:8443/ in two tabs and join the same room (Ctrl-C stops it all)" >&2
wait
