#!/bin/bash
# paired echo k=16 reruns: before, after alternating, 3 rounds, fresh server each
OUT=/tmp/h19/ba/k16; mkdir -p $OUT; : > $OUT/results.txt
A=127.0.0.1:29411
for r in 1 2 3; do for L in before after; do
  W=/tmp/wsload-$L
  /tmp/wsmill-19 -addr $A -push-interval 1s -idle-timeout 0 >/dev/null 2>&1 & S=$!; sleep 0.5
  $W echo -addr $A -c 100 -size 128 -k 16 -duration 5s -pid $S 2>/dev/null | grep '^RESULT' | sed "s/^/echo-k16-r$r $L /" >> $OUT/results.txt
  kill -TERM $S; wait $S 2>/dev/null
done; done
