#!/bin/bash
# usage: suite.sh WSLOAD ROOT OUTDIR
set -u
W=$1; ROOT=$2; OUT=$3
mkdir -p $OUT
cd $ROOT/bench
S=wsmill,gorilla
run() { name=$1; shift; echo "== $name: $*" >&2; flock /tmp/bench.lock "$@" >$OUT/$name.txt 2>$OUT/$name.err; echo "rc=$?" >>$OUT/$name.txt; }
run echo        $W compare -workload echo -rounds 2 -servers $S -c 100 -size 128 -k 1 -duration 5s -out $OUT/echo
run echo-k16    $W compare -workload echo -rounds 2 -servers $S -c 100 -size 128 -k 16 -duration 5s -out $OUT/echo-k16
run push        $W compare -workload push -rounds 1 -servers $S -n 2000 -interval 1s -duration 10s -out $OUT/push
run fanout      $W compare -workload fanout -rounds 1 -servers $S -n 1000 -interval 1s -duration 10s -out $OUT/fanout
run connections $W compare -workload connections -rounds 1 -servers $S -n 5000 -out $OUT/connections
run scale       $W scale -n 3000 -step 1000 -servers 3 -out $OUT/scale
(cd $ROOT && SOAK_DURATION=1m flock /tmp/bench.lock make soak) >$OUT/soak.txt 2>$OUT/soak.err; echo "rc=$?" >>$OUT/soak.txt
echo done >&2
