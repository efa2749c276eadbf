#!/bin/sh
# measure.sh: the cloud's memory and CPU while it serves the shipped
# bundles, the figures behind the Deployment's resources (docs/DEPLOY.md).
# Starts `bin/splitstream cloud` with every bundle of models/zoo on
# loopback, streams the test set's scenes through `bin/splitstream edge`
# once per split bundle, and prints the cloud's resident memory (after
# loading, peak) and CPU (cores busy on average while serving).
# Usage: deploy/measure.sh [CONCURRENCY]   (after `make build`)
set -eu
conc=${1:-8}
bin=bin/splitstream
tmp=$(mktemp -d)
trap 'kill $cloud 2>/dev/null; rm -rf "$tmp"' EXIT
$bin certs init "$tmp/certs" >/dev/null
mkdir "$tmp/scenes"
cp models/zoo/testset/scene_*.png "$tmp/scenes/"
bundles=$(ls -d models/zoo/*/ | grep -v testset | sed 's:/$::' | paste -sd, -)
port=$((20000 + $$ % 20000))
$bin cloud --listen 127.0.0.1:$port --bundle "$bundles" --cert "$tmp/certs/server.pem" \
	--key "$tmp/certs/server-key.pem" --client-ca "$tmp/certs/ca.pem" 2>"$tmp/cloud.log" &
cloud=$!
until grep -q "cloud serving" "$tmp/cloud.log"; do sleep 0.2; done
rss() { awk -v k="$1" '$1 == k":" {print int($2/1024)}' /proc/$cloud/status; }
ticks() { awk '{print $14 + $15}' /proc/$cloud/stat; }
hz=$(getconf CLK_TCK)
echo "bundles: $bundles"
echo "loaded: rss $(rss VmRSS) MiB"
t0=$(ticks); s0=$(date +%s.%N); n=0
for b in $(ls -d models/zoo/*/ | sed 's:/$::'); do
	grep -q '"encoder"' "$b/manifest.json" 2>/dev/null || continue
	$bin edge --server 127.0.0.1:$port --bundle "$b" --input "$tmp/scenes" --concurrency "$conc" \
		--ca "$tmp/certs/ca.pem" --cert "$tmp/certs/client.pem" --key "$tmp/certs/client-key.pem" \
		--out "$tmp/out.jsonl" | grep -E '^images'
	n=$((n + $(grep -c '"status":"ok"' "$tmp/out.jsonl" || true)))
done
t1=$(ticks); s1=$(date +%s.%N)
awk -v n=$n -v c=$((t1 - t0)) -v hz=$hz -v s0=$s0 -v s1=$s1 -v conc=$conc 'BEGIN {
	w = s1 - s0; printf "served %d requests in %.1f s (%.1f/s, %d in flight): cloud CPU %.2f s, %.2f cores on average, %.1f ms CPU per request\n", n, w, n / w, conc, c / hz, c / hz / w, 1000 * c / hz / n }'
echo "peak: rss $(rss VmHWM) MiB; after serving: rss $(rss VmRSS) MiB"
