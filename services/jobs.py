"""Background training jobs for the app: ``fit`` in a worker thread, observable and stoppable.

A job outlives the script run that started it (Streamlit reruns, page changes, reloads):
the module-level ``MANAGER`` holds it. Each job writes its own checkpoint file, reserved
atomically when the job starts, so two jobs never write the same file.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .checkpoint import save
from .config import ModelConfig, TrainConfig
from .data import load_dataset
from .evaluate import binarized, evaluate
from .models import build_model
from .registry import InUseError, release, reserve, trained_path
from .train import History, Progress, fit

RUNNING = ("starting", "running")


class JobError(ValueError):
    """A job cannot be started (a name taken, a file already there)."""


@dataclass
class TrainingJob:
    """One training run. The page reads the public fields; the worker thread writes them."""

    name: str
    model_config: ModelConfig
    train_config: TrainConfig
    path: Path
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    status: str = "starting"  # starting, running, done, stopped, failed
    message: str = ""
    progress: Progress | None = None
    epochs: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    previews: dict[str, torch.Tensor] = field(default_factory=dict)  # "reconstructions", "samples": (N,C,H,W)
    metrics: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    def stop(self) -> None:
        """Ask the worker to stop after its current step (it then saves what it has)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- worker side

    def _previews(self, model, x: torch.Tensor) -> None:
        with torch.no_grad():
            model.eval()
            gen = torch.Generator().manual_seed(0)
            self.previews = {
                "originals": x.cpu(),
                "reconstructions": model.reconstruct(x.to(model.device)).cpu(),
                "samples": model.sample(len(x), generator=gen).cpu(),
            }
            model.train()

    def _run(self) -> None:
        try:
            data = load_dataset(
                self.train_config.dataset,
                data_dir=self.train_config.data_dir,
                image_size=self.model_config.image_shape[1],
                channels=self.model_config.image_shape[0],
                memory_budget_mb=self.train_config.memory_budget_mb,
            )
            cfg = ModelConfig.from_dict({**self.model_config.to_dict(), "image_shape": list(data.image_shape)})
            self.model_config = cfg
            torch.manual_seed(self.train_config.seed)
            model = build_model(cfg)
            preview_x = data.test_x[:8]
            history = History()
            self.status = "running"
            self.message = (
                f"training on {data.n_train:,} images"
                + (" streamed from disk" if data.streamed else "")
                + (f" ({len(data.skipped)} files skipped)" if data.skipped else "")
            )

            def on_progress(p: Progress) -> bool:
                self.progress = p
                if p.phase == "step":
                    self.steps.append({"step": p.global_step, "loss": p.loss, "recon": p.recon, "kl": p.kl})
                else:
                    self.epochs = list(history.epochs)
                    self._previews(p.model, preview_x)
                    save(
                        self.path,
                        p.model,
                        train=self.train_config,
                        dataset=data.info(),
                        history=history.to_dict(),
                        optimizer=p.optimizer,
                    )
                return self._stop.is_set()

            fit(model, data, self.train_config, on_progress, history=history)
            self.epochs = list(history.epochs)
            if history.error:
                self.status, self.message = "failed", history.error
                return
            model.cpu().eval()
            x = data.test_x[:1000]
            self.metrics = evaluate(model, binarized(x) if cfg.binarize else x, iwae_k=100 if len(x) else 0)
            save(
                self.path,
                model,
                train=self.train_config,
                dataset=data.info(),
                history=history.to_dict(),
                metrics=self.metrics,
                optimizer=history.optimizer_state,
            )
            self._previews(model, preview_x)
            self.status = "stopped" if history.stopped else "done"
            self.message = f"saved {self.path.name}" + (" (stopped early)" if history.stopped else "")
        except Exception as e:  # the page shows the message; the server log keeps the details
            traceback.print_exc()
            self.status, self.message = "failed", f"{e.__class__.__name__}: {e}"
        finally:
            self.finished = time.time()
            release(self.path)


class JobManager:
    """All training jobs of this server process."""

    def __init__(self) -> None:
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()

    def start(self, name: str, model_config: ModelConfig, train_config: TrainConfig) -> TrainingJob:
        """Reserve ``checkpoints/trained/NAME.safetensors`` and start training into it.

        Raises JobError if the name is taken by a file or a running job, ValueError if unsafe.
        """
        path = trained_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if path.exists():
                raise JobError(f"a checkpoint named {name!r} already exists: choose another name")
            try:  # atomic against another process (the CLI, a second server) too
                reserve(path)
            except InUseError:
                raise JobError(f"{name!r} is being trained right now: choose another name") from None
            job = TrainingJob(name=name, model_config=model_config, train_config=train_config, path=path)
            self._jobs[job.id] = job
        job._thread = threading.Thread(target=job._run, name=f"train-{name}", daemon=True)
        job._thread.start()
        return job

    def get(self, job_id: str) -> TrainingJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[TrainingJob]:
        return sorted(self._jobs.values(), key=lambda j: -j.started)


MANAGER = JobManager()
