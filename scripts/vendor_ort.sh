#!/usr/bin/env bash
# Re-vendors the in-browser runtime into static/ort/ from the npm registry (no CDN): onnxruntime-web,
# pinned, and only the two files its single-threaded WASM CPU backend loads. The app serves them itself
# (Streamlit static serving), so a clone needs neither npm nor the internet to run the live decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.30.0
declare -A SHA256=(
  [ort.wasm.bundle.min.mjs]=11e64bd8ffe11bd1a2a2f0d6275fdfbbba7262f0b76b99b53d228a8a22ef3d90
  [ort-wasm-simd-threaded.wasm]=3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null && tar xzf "onnxruntime-web-$VERSION.tgz")
for f in "${!SHA256[@]}"; do
  echo "${SHA256[$f]}  $tmp/package/dist/$f" | sha256sum --check --quiet
  cp "$tmp/package/dist/$f" static/ort/
done
ls -l static/ort
