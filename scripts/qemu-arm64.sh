#!/usr/bin/env bash
# Prints the path of a qemu-aarch64-static that runs arm64 binaries here.
# Uses the system one if present, else unpacks Debian's qemu-user-static into
# third_party/qemu/ with dpkg-deb -x (no binfmt registration is needed: test
# binaries are started through qemu explicitly).
set -euo pipefail
if command -v qemu-aarch64-static >/dev/null 2>&1; then
  command -v qemu-aarch64-static; exit 0
fi
dest=third_party/qemu
bin="$dest/usr/bin/qemu-aarch64-static"
if [ ! -x "$bin" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download qemu-user-static >/dev/null 2>&1) || {
    apt-get update -qq >/dev/null && (cd "$tmp" && apt-get download qemu-user-static >/dev/null); }
  mkdir -p "$dest" && dpkg-deb -x "$tmp"/qemu-user-static_*.deb "$dest"
fi
echo "$PWD/$bin"
