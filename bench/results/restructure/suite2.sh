#!/bin/bash
# usage: suite2.sh OUTDIR LABEL=WSLOAD=TREE ...
# Each workload runs with every binary in turn (paired: same minutes),
# against /tmp/wsmill-19 (fanout: /tmp/peer-wsmill-19, the root wsmill has no broadcast).
set -u
OUT=$1; shift
mkdir -p $OUT; : > $OUT/results.txt
A=127.0.0.1:29411
start() { "$@" >$OUT/server.log 2>&1 & SPID=$!; sleep 0.5; }
stopsrv() { kill -TERM $SPID 2>/dev/null; wait $SPID 2>/dev/null; }
run() { name=$1; label=$2; shift 2
  echo "== $name/$label: $*" >&2
  "$@" >$OUT/$name-$label.txt 2>$OUT/$name-$label.err; rc=$?
  echo "rc=$rc" >>$OUT/$name-$label.txt
  grep '^RESULT ' $OUT/$name-$label.txt | sed "s/^/$name $label /" >>$OUT/results.txt
  echo "$name $label rc=$rc" >>$OUT/rc.txt
}
each() { for pair in "$PAIRS"; do :; done; }
PAIRS=("$@")
for wl in echo echo-k16 push connections fanout compare scale soak; do
  for pair in "${PAIRS[@]}"; do L=${pair%%=*}; rest=${pair#*=}; W=${rest%%=*}; T=${rest#*=}
    cd $T/bench
    case $wl in
    echo) start /tmp/wsmill-19 -addr $A -push-interval 1s -idle-timeout 0
      run echo $L $W echo -addr $A -c 100 -size 128 -k 1 -duration 5s -pid $SPID; stopsrv;;
    echo-k16) start /tmp/wsmill-19 -addr $A -push-interval 1s -idle-timeout 0
      run echo-k16 $L $W echo -addr $A -c 100 -size 128 -k 16 -duration 5s -pid $SPID; stopsrv;;
    push) start /tmp/wsmill-19 -addr $A -push-interval 1s -idle-timeout 0
      run push $L $W push -addr $A -n 2000 -interval 1s -duration 10s -pid $SPID; stopsrv;;
    connections) start /tmp/wsmill-19 -addr $A -push-interval 1s -idle-timeout 0
      run connections $L $W connections -addr $A -n 5000 -procs 2 -src 127.0.0.2,127.0.0.3 -pid $SPID -hold 3s; stopsrv;;
    fanout) start /tmp/peer-wsmill-19 -addr $A -push-interval 1h -fanout-interval 1s
      run fanout $L $W fanout -addr $A -n 1000 -interval 1s -duration 10s -pid $SPID; stopsrv;;
    compare) run compare $L $W compare -workload echo -rounds 1 -servers wsmill,gorilla -c 50 -size 128 -k 1 -duration 3s -out $OUT/compare-$L;;
    scale) run scale $L $W scale -n 3000 -step 1000 -servers 3 -server-bin /tmp/wsmill-19 -out $OUT/scale-$L;;
    soak) start /tmp/wsmill-19 -addr $A -push-interval 1s -handshake-timeout 2s -idle-timeout 5s -close-timeout 1s -max-message 1048576
      run soak $L $W soak -addr $A -pid $SPID -interval 1s -max-message 1048576 -close-timeout 1s -stop -duration 1m; stopsrv;;
    esac
  done
done
echo done >&2
