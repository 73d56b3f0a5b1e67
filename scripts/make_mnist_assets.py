"""Builds vae/assets/mnist/mnist-test.npz, the MNIST test set shipped in the repository.

    .venv/bin/python scripts/make_mnist_assets.py [RAW_FOLDER]   # default ../shared/data/MNIST/raw

RAW_FOLDER holds MNIST's t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (or their .gz). The 10,000
test images go in unchanged, as uint8, so that a clone without MNIST's files still shows and scores the
committed MNIST models on the real test set; the 60,000 training images are never shipped.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae.data import IN_BOX_MNIST, read_idx  # noqa: E402


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed entry dates: rebuilding from the same files gives the same bytes,
    so git sees no change."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue(), compresslevel=9)


def main(argv: list[str]) -> int:
    """Read the raw test files from argv[0] (or ../shared/data/MNIST/raw) and write IN_BOX_MNIST."""
    raw = Path(argv[0]) if argv else ROOT.parent / "shared" / "data" / "MNIST" / "raw"
    x = read_idx(raw / "t10k-images-idx3-ubyte")
    y = read_idx(raw / "t10k-labels-idx1-ubyte")
    if x.shape != (10_000, 28, 28) or y.shape != (10_000,):
        print(f"error: {raw} holds {x.shape} images and {y.shape} labels, not MNIST's test set", file=sys.stderr)
        return 1
    IN_BOX_MNIST.parent.mkdir(parents=True, exist_ok=True)
    write_npz(IN_BOX_MNIST, {"x": x, "y": y})
    print(f"{IN_BOX_MNIST.relative_to(ROOT)}: {IN_BOX_MNIST.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
