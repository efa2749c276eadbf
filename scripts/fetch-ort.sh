#!/usr/bin/env bash
# Puts ONNX Runtime's shared library into third_party/ort/ (git-ignored).
# It comes from the npm package onnxruntime-node, unpacked without running
# its install scripts, so nothing but the npm registry is contacted.
set -euo pipefail
version=${ORT_NPM_VERSION:-1.30.0}
dest=${1:-third_party/ort}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "fetch-ort: no ONNX Runtime build for $(uname -m)" >&2; exit 1 ;;
esac
if [ -f "$dest/libonnxruntime.so" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version-$arch" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp"
lib="$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
[ -f "$lib" ] || { echo "fetch-ort: $lib missing from the npm package" >&2; exit 1; }
mkdir -p "$dest"
cp "$lib" "$dest/libonnxruntime.so"
echo "$version-$arch" > "$dest/VERSION"
echo "fetch-ort: ONNX Runtime $version ($arch) in $dest/libonnxruntime.so"
