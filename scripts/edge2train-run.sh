#!/usr/bin/env bash
# Edge2Train through the real edge and cloud on loopback (docs/EDGE2TRAIN.md):
# the edge learns a local classifier from the cloud's replies on a folder of
# fresh scenes, `learn eval` scores it on the test set, then the edge streams
# the test set with --fallback local while the cloud is killed and restarted.
# Usage: scripts/edge2train-run.sh TRAIN_IMAGES_DIR [WORK_DIR]  (run from the
# repository root after `make build`; TRAIN_IMAGES_DIR holds the scene PNGs).
set -u
W=${2:-$(mktemp -d)}; mkdir -p $W
B=models/zoo/fmnist-es-b0.11
P=$W/pki
bin/splitstream certs init $P > /dev/null
mkdir -p $W/test; for f in models/zoo/testset/*.png; do case $(basename $f) in mask_*) ;; *) ln -sf $PWD/$f $W/test/;; esac; done
cloud() { bin/splitstream cloud --listen 127.0.0.1:4455 --bundle $B --cert $P/server.pem --key $P/server-key.pem --client-ca $P/ca.pem --ticket-keys $W/keys --engine native > /dev/null 2>> $W/cloud.log & echo $!; }
printf '%064x\n' 777 > $W/keys
EDGE="bin/splitstream edge --server 127.0.0.1:4455 --server-name localhost --bundle $B --ca $P/ca.pem --cert $P/client.pem --key $P/client-key.pem --learn $W/model --learn-trunk --fallback local --tasks classify --timeout 3s"
pid=$(cloud); sleep 2
echo "== learning from the cloud's replies on 2000 fresh scenes"
/usr/bin/time -v $EDGE --input "$1" --out $W/train.jsonl > $W/train.summary 2> $W/train.time; echo "rc=$?"
head -3 $W/train.summary; grep "Maximum resident" $W/train.time
echo "== learn eval on the 500 test scenes"
bin/splitstream learn eval --bundle $B --model $W/model --trunk --testset models/zoo/testset --json
echo "== the test set while the cloud is killed and restarted"
( sleep 3; kill -9 $pid; echo "killed cloud at $(date +%T.%N)" >&2; sleep 4; cloud > $W/pid2; echo "restarted cloud at $(date +%T.%N)" >&2 ) &
$EDGE --input $W/test --concurrency 2 --out $W/fault.jsonl > $W/fault.summary; echo "rc=$?"
wait
head -3 $W/fault.summary
python3 - <<'PY'
import json
recs=[json.loads(l) for l in open('$W/fault.jsonl')]
idx=sorted(r['index'] for r in recs)
print('records', len(recs), 'distinct', len(set(idx)), 'status', {s: sum(1 for r in recs if r['status']==s) for s in set(r['status'] for r in recs)})
print('classified', sum(1 for r in recs if r.get('results',{}).get('classify')), 'local', sum(1 for r in recs if r.get('source')=='local'))
PY
kill $(cat $W/pid2) 2>/dev/null
