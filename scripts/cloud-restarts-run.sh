#!/usr/bin/env bash
# The edge streams the shipped test set twice (1000 images) to a cloud on
# loopback that is SIGKILLed and restarted twice under it (issue 16's fault
# run); prints the edge's summary and checks every image ended ok once.
# Run from the repository root after `make build`.
set -u
W=$(mktemp -d); B=models/zoo/fmnist-es-b0.11; P=$W/pki
bin/splitstream certs init $P > /dev/null
printf '%064x\n' 777 > $W/keys   # shared session-ticket keys: 0-RTT survives the restarts
mkdir -p $W/test; for f in models/zoo/testset/*.png; do case $(basename $f) in mask_*) ;; *) ln -s $PWD/$f $W/test/;; esac; done
cloud() { bin/splitstream cloud --listen 127.0.0.1:4456 --bundle $B --cert $P/server.pem --key $P/server-key.pem --client-ca $P/ca.pem --ticket-keys $W/keys > /dev/null 2>> $W/cloud.log & echo $!; }
pid=$(cloud); sleep 2
( sleep 2; kill -9 $pid; echo "kill 1 $(date +%T.%N)" >&2; sleep 1; p2=$(cloud); sleep 8; kill -9 $p2; echo "kill 2 $(date +%T.%N)" >&2; sleep 1; cloud > $W/pid3 ) &
bin/splitstream edge --server 127.0.0.1:4456 --server-name localhost --bundle $B --ca $P/ca.pem --cert $P/client.pem --key $P/client-key.pem \
  --input $W/test --input $W/test --concurrency 4 --out $W/records.jsonl > $W/summary; echo "edge rc=$?"
wait; kill $(cat $W/pid3)
head -1 $W/summary; tail -1 $W/summary
python3 -c "
import json, sys
r=[json.loads(l) for l in open('$W/records.jsonl')]
print('records', len(r), 'distinct', len({x['index'] for x in r}), 'ok', sum(x['status']=='ok' for x in r))
sys.exit(0 if len(r) == len({x['index'] for x in r}) == sum(x['status']=='ok' for x in r) == 1000 else 1)"
