#!/bin/bash
# A = publish locally then to NATS (main); B = NATS first. ABBA, one round of 2 x 9,000 each.
set -e
for v in A B B A; do
  /tmp/wsload-main roomfan -n 18000 -layouts 2 -rounds 1 -interval 1s -duration 15s -settle 30s \
     -wsmill-bin /tmp/wsmill-$v -natsd-bin /tmp/natsd-AB -out /tmp/h/ab-bridge-$v-$RANDOM > /tmp/h/ab-bridge-$v.$(date +%s).txt 2>&1
done
