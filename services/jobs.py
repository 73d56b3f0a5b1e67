"""Background jobs: one runner for every long computation of the app (training runs, t-SNE maps).

A job outlives the script run that started it (Streamlit reruns, page changes, reloads): a
module-level runner holds it, and pages poll its public fields. Every job speaks one vocabulary:

``state``
    ``queued``     waiting for a free worker slot;
    ``running``    its function runs;
    ``done``       its function returned; ``result`` holds what it returned. A training run that
                   Stop ended early is done too: it saved what it had and says "stopped early";
    ``cancelled``  cancelled before it produced anything;
    ``error``      its function raised; ``error`` (and ``message``) say why.
``progress``  the fraction done, 0..1; ``message`` what it is doing, in words.

``RUNNER`` runs the maps (one worker: t-SNE takes the cores); ``MANAGER`` runs training jobs on a
``Runner`` of its own, so that a long training run never queues a map, nor a map a run. Each
training job writes its own checkpoint file, reserved atomically when the job starts, so two jobs
never write the same file.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from services.registry import trained_path
from vae import train
from vae.checkpoint import InUseError, release, reserve
from vae.config import ModelConfig, TrainConfig
from vae.run import Ready, RunSpec, run_training

Report = Callable[[float, str], None]  # (fraction done, message): what a job's function calls as it goes

ACTIVE = ("queued", "running")
FINISHED = ("done", "cancelled", "error")
QUEUED_MESSAGE = "waiting for another computation to finish"


class JobError(ValueError):
    """A job cannot be started (a name taken, a file already there)."""


class Cancelled(Exception):
    """Raised inside a job's progress callback once the job was cancelled."""


class Failed(Exception):
    """Raised by a job's function to fail with this message as it stands (no exception name in front)."""


@dataclass(eq=False)
class Job:
    """One background computation; read its fields to poll it (the worker thread writes them)."""

    key: str
    state: str = "queued"
    progress: float = 0.0
    message: str = QUEUED_MESSAGE
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in ACTIVE

    @property
    def done(self) -> bool:
        """Finished, whichever way (done, cancelled or error)."""
        return self.state in FINISHED

    @property
    def elapsed(self) -> float:
        """Seconds it has been running (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def cancel_requested(self) -> bool:
        """Whether ``cancel`` was called (the job may still be finishing)."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the job to stop; its function sees it at its next progress report."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests, CLIs); True if it did within ``timeout``."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def summary(self, result: Any) -> str:
        """The message of a job that is done (subclasses say more)."""
        return "done"

    def _update(self, fraction: float, message: str | None = None) -> None:
        self.progress = float(min(max(fraction, 0.0), 1.0))
        if message is not None:
            self.message = message


J = TypeVar("J", bound=Job)


class Runner:
    """Runs ``fn(report)`` in daemon threads, at most ``workers`` at a time (None: no limit), one job per key.

    ``report(fraction, message)`` updates the job and raises ``Cancelled`` once it was cancelled.
    Finished jobs are kept (the ``keep`` newest; None: all, until ``forget``) so that every session
    polling a key sees its result. ``log_errors`` prints the traceback of an unexpected exception
    to the server's log.
    """

    def __init__(
        self, workers: int | None = 1, keep: int | None = 8, name: str = "job", log_errors: bool = False
    ) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(workers) if workers else None
        self._keep = keep
        self._name = name
        self._log_errors = log_errors

    def get(self, key: str) -> Job | None:
        """The job kept under ``key``, if any."""
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        """Every job kept, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: -j.created)

    def submit(self, key: str, fn: Callable[[Report], Any]) -> Job:
        """Start ``fn`` under ``key`` unless a job for that key is queued, running or done."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state in ("queued", "running", "done"):
                return job
            return self._launch(Job(key), fn)

    def start(self, job: J, fn: Callable[[Report], Any]) -> J:
        """Run ``fn`` for a job the caller built (a ``Job`` subclass with fields of its own) under a new key."""
        with self._lock:
            if job.key in self._jobs:
                raise JobError(f"a job {job.key!r} exists already")
            return self._launch(job, fn)

    def cancel(self, key: str) -> None:
        """Cancel the job under ``key`` unless it has finished."""
        job = self.get(key)
        if job is not None and not job.done:
            job.cancel()

    def forget(self, key: str) -> bool:
        """Drop a finished job (so that ``submit`` starts it afresh); False if none was dropped."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.done:
                del self._jobs[key]
                return True
            return False

    def _launch(self, job: J, fn: Callable[[Report], Any]) -> J:
        self._jobs[job.key] = job
        self._prune()
        job._thread = threading.Thread(
            target=self._run, args=(job, fn), name=f"{self._name}-{job.key[:24]}", daemon=True
        )
        job._thread.start()
        return job

    def _prune(self) -> None:
        if self._keep is None:
            return
        done = sorted((j for j in self._jobs.values() if j.done), key=lambda j: j.created)
        for j in done[: max(0, len(done) - self._keep)]:
            del self._jobs[j.key]

    def _run(self, job: Job, fn: Callable[[Report], Any]) -> None:
        def report(fraction: float, message: str) -> None:
            if job._cancel.is_set():
                raise Cancelled
            job._update(fraction, message)

        with self._slots or contextlib.nullcontext():
            if job._cancel.is_set():
                job.state, job.message, job.finished = "cancelled", "cancelled", time.monotonic()
                return
            job.started = time.monotonic()
            job.state, job.message = "running", "starting"
            try:
                result = fn(report)
            except Cancelled:
                job.state, job.message = "cancelled", "cancelled"
            except Failed as e:
                job.error = str(e)
                job.state, job.message = "error", job.error
            except Exception as e:  # reported to the page through job.error
                if self._log_errors:
                    traceback.print_exc()
                job.error = f"{type(e).__name__}: {e}"
                job.state, job.message = "error", job.error
            else:
                job.result, job.progress = result, 1.0
                job.message = job.summary(result)
                job.state = "done"
            finally:
                job.finished = time.monotonic()


RUNNER = Runner(name="map")  # process-wide: every session asking for the same map shares one computation


# --------------------------------------------------------------------------- training runs


@dataclass(eq=False, kw_only=True)
class TrainingJob(Job):
    """One training run into ``path``; ``result`` is its final test metrics.

    Besides the ``Job`` fields, the page reads ``latest`` (the last ``train.Progress``), the step
    and epoch curves, the preview images and ``stopped`` (Stop ended it early, after a save).
    """

    name: str
    model_config: ModelConfig
    train_config: TrainConfig
    path: Path
    key: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    message: str = "loading the data"
    latest: train.Progress | None = None
    epochs: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    previews: dict[str, torch.Tensor] = field(default_factory=dict)  # "reconstructions", "samples": (N,C,H,W)
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    _ready: Ready | None = field(default=None, repr=False)  # the run while it trains (its data, history)

    @property
    def id(self) -> str:
        """The run's id (its runner key), for widget keys."""
        return self.key

    def summary(self, result: Any) -> str:
        return f"saved {self.path.name}" + (" (stopped early)" if self.stopped else "")

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

    def _on_ready(self, ready: Ready, report: Report) -> None:
        """The data are loaded and the model built: the last moment a Stop cancels the run outright."""
        self.model_config = ready.model_config  # its image_shape is the data's
        self._ready = ready
        data = ready.data
        report(
            0.0,  # raises Cancelled if Stop came while the data loaded
            f"training on {data.n_train:,} images"
            + (" streamed from disk" if data.streamed else "")
            + (f" ({len(data.skipped)} files skipped)" if data.skipped else ""),
        )

    def _on_progress(self, p: train.Progress) -> bool:
        """fit's callback, after each epoch's save: record the curves, preview each epoch, stop once
        Stop was pressed."""
        self.latest = p
        self._update(((p.epoch - 1) * p.steps_per_epoch + p.step) / (p.epochs * p.steps_per_epoch))
        if p.phase == "step":
            self.steps.append({"step": p.global_step, "loss": p.loss, "recon": p.recon, "kl": p.kl})
        elif self._ready is not None:
            self.epochs = list(self._ready.history.epochs)
            self._previews(p.model, self._ready.data.test_x[:8])
        # Stop is not Cancelled: fit ends after this step and the run saves and scores what it has.
        return self.cancel_requested

    def _work(self, report: Report) -> dict[str, Any]:
        try:
            report(0.0, f"loading {self.train_config.dataset}")
            c, h, _ = self.model_config.image_shape
            spec = RunSpec(self.path, self.train_config, self.model_config, image_size=h, channels=c)
            result = run_training(spec, self._on_progress, on_ready=lambda r: self._on_ready(r, report))
            self.epochs = list(result.history.epochs)
            if result.history.error:
                raise Failed(result.history.error)
            assert result.metrics is not None and result.model is not None and self._ready is not None
            self.metrics = result.metrics
            self._previews(result.model, self._ready.data.test_x[:8])
            self.stopped = result.history.stopped
            return self.metrics
        finally:
            self._ready = None  # a finished job is kept until dismissed: not its data
            release(self.path)


class JobManager:
    """The training runs of this server process, on a runner of their own (no limit, none dropped
    until dismissed)."""

    def __init__(self) -> None:
        self._runner = Runner(workers=None, keep=None, name="train", log_errors=True)
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
            try:
                return self._runner.start(job, job._work)
            except BaseException:
                release(path)
                raise

    def jobs(self) -> list[TrainingJob]:
        """Every run not dismissed, newest first."""
        return self._runner.jobs()  # type: ignore[return-value]

    def dismiss(self, job_id: str) -> bool:
        """Forget a finished run (its checkpoint stays); False if it is still active or unknown."""
        return self._runner.forget(job_id)


MANAGER = JobManager()
