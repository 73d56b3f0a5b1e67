#!/usr/bin/env bash
# Rebuilds every committed checkpoint in checkpoints/ (run through `make checkpoints`).
# The MNIST models read torchvision's raw MNIST files from $DATA (default ../shared/data), passed as
# $VAE_DATA_DIR rather than --data-dir: a checkpoint records --data-dir, and a committed one must not name
# a folder outside the repository (a clone has none; the app then uses vae/assets/mnist).
# Pass model names to rebuild only some: bash scripts/make_checkpoints.sh moons-vae moons-ae
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
export VAE_DATA_DIR=$DATA
common=(--seed 1 --quiet --overwrite)
small=(--no-optimizer-state)  # Adam's state triples a file: kept only where it still fits in 5 MB

build() {
  local name=$1; shift
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then return; fi
  echo "== $name"
  "$PY" -m vae.train "$@" "${common[@]}" --out "checkpoints/$name.safetensors"
}

only=("$@")
# The seeds' full-moon / half-moon example: a VAE and an AE, same architecture and seed.
build moons-vae "${small[@]}" --dataset moons --kind vae --arch mlp --hidden 512,256 --latent-dim 16 --epochs 40 --iwae-k 1000
build moons-ae  "${small[@]}" --dataset moons --kind ae  --arch mlp --hidden 512,256 --latent-dim 16 --epochs 40
# What beta trades (the Compare page): moons-vae is beta = 1; these differ from it in beta alone.
for beta in 0.5 4; do
  build "moons-vae-beta$beta" "${small[@]}" --dataset moons --kind vae --arch mlp --hidden 512,256 --latent-dim 16 \
    --epochs 40 --iwae-k 1000 --beta "$beta"
done
build digits-vae "${small[@]}" --dataset digits --kind vae --arch mlp --hidden 512,256 --latent-dim 8 --epochs 150 --iwae-k 1000
# Kingma & Welling's figure 4: a 2-D latent for the manifold grid.
build mnist-vae-2d "${small[@]}" --dataset mnist --kind vae --arch mlp --hidden 512,256 --latent-dim 2 \
  --epochs 30 --iwae-k 1000 --iwae-n all
# The conv VAE on dynamically binarized MNIST, 221 epochs (trained here in several resumed runs on this
# 2-core CPU, about 15 s an epoch on an idle machine). It keeps Adam's state, so `--resume --epochs N`
# trains it further.
build mnist-vae-conv --dataset mnist --kind vae --arch conv --hidden 32,64 --latent-dim 32 \
  --binarize --epochs 221 --iwae-k 0
if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " =~ " mnist-vae-conv " ]]; then
  # IWAE-5000 on all 10,000 test digits, for the model card (about an hour here: benchmarks/iwae_speed.py).
  "$PY" -m vae.evaluate checkpoints/mnist-vae-conv.safetensors --iwae-k 5000 --save-iwae
fi
