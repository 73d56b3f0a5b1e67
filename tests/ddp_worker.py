"""Run by tests/test_distributed.py under torchrun: ``fit`` as a library under a Gloo process group.

Each rank starts from different weights on purpose (DDP must hand rank 0's to all), trains one
short epoch on moons, and writes its weights and history to OUT_DIR/rank{r}.*; rank 0 also
saves the checkpoint as the CLI would. Then the same for a small image folder streamed from disk
(stream{r}.*). Not a test module (no test_ prefix).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae import distributed  # noqa: E402
from vae.checkpoint import save  # noqa: E402
from vae.config import ModelConfig, TrainConfig  # noqa: E402
from vae.data import load_folder, load_moons  # noqa: E402
from vae.models import build_model  # noqa: E402
from vae.train import fit  # noqa: E402


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)
    distributed.start(torch.device("cpu"))
    r, world = distributed.rank(), distributed.world_size()
    assert world == 2, world
    data = load_moons(n_train=1000, n_test=200)
    cfg = ModelConfig(hidden=(32,), latent_dim=4)
    torch.manual_seed(100 + r)  # different weights on each rank before DDP
    model = build_model(cfg)
    train_cfg = TrainConfig(epochs=1, batch_size=50, device="cpu", log_every=3)
    steps_seen = []
    history = fit(model, data, train_cfg, callback=lambda p: steps_seen.append(p.global_step))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / f"rank{r}.safetensors"))
    record = {"history": history.to_dict(), "callbacks": len(steps_seen), "world": world}
    (out_dir / f"rank{r}.json").write_text(json.dumps(record))
    if distributed.is_main():
        save(out_dir / "model.safetensors", model, train=train_cfg, dataset=data.info(), history=history.to_dict())

    # The same under a folder streamed from disk (a DistributedSampler shares it out).
    folder = out_dir / "folder"
    if distributed.is_main():
        g = torch.Generator().manual_seed(0)
        for i in range(90):
            (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
            arr = (torch.rand(8, 8, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(arr, "L").save(folder / str(i % 2) / f"{i}.png")
    torch.distributed.barrier()
    streamed = load_folder(folder, size=8, memory_budget_mb=0.0001)
    model = build_model(ModelConfig(image_shape=(1, 8, 8), hidden=(16,), latent_dim=2))
    history = fit(model, streamed, TrainConfig(epochs=2, batch_size=10, device="cpu", workers=1, log_every=100))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / f"stream{r}.safetensors"))
    record = {"history": history.to_dict(), "streamed": streamed.streamed, "n_train": streamed.n_train}
    (out_dir / f"stream{r}.json").write_text(json.dumps(record))
    distributed.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
