"""The Train page's runs: one panel per training job on this server (state, progress, curves, previews,
what can be done with it), refreshed once a second while one runs."""

from __future__ import annotations

from typing import Any

import streamlit as st

from services.jobs import MANAGER, TrainingJob
from ui import training as ui_train


def _progress(job: TrainingJob) -> None:
    p = job.latest
    if p is not None:
        st.progress(
            job.progress,
            text=f"epoch {p.epoch}/{p.epochs} · step {p.step}/{p.steps_per_epoch} · "
            f"loss {p.loss:.2f} · {p.samples_per_s:,.0f} images/s · ETA {p.eta_s:,.0f} s",
        )


def _stop_or_dismiss(job: TrainingJob) -> None:
    if job.active:
        if st.button("Stop", key=f"tr_stop_{job.id}", disabled=job.cancel_requested):
            job.cancel()
    elif st.button("Dismiss", key=f"tr_dismiss_{job.id}", help="Take it off this list; its checkpoint stays."):
        MANAGER.dismiss(job.id)
        st.rerun()


def job_panel(job: TrainingJob) -> None:
    """One run: its state, progress, curves, previews and what can be done with it."""
    cfg = job.model_config
    st.markdown(
        f"**{job.name}** · {job.train_config.dataset} · {cfg.kind.upper()} "
        f"{cfg.arch} z={cfg.latent_dim} · *{job.state}* {job.message}"
    )
    _progress(job)
    _stop_or_dismiss(job)
    if job.steps or job.epochs:  # a run that failed before its first step has nothing to plot
        st.plotly_chart(ui_train.curves(job), key=f"tr_curves_{job.id}")
    if job.previews:
        ui_train.previews(job)
    if job.state == "done":
        ui_train.final_metrics(job)
        if st.button("Use this model", key=f"tr_use_{job.id}"):
            st.session_state["model_choice"] = f"{job.name} (trained here)"
            st.switch_page("app.py")
    elif job.state == "error":
        st.error(job.message)


def _panels(running: bool) -> None:
    for job in MANAGER.jobs():
        with st.container(border=True):
            job_panel(job)
    if running and not any(j.active for j in MANAGER.jobs()):
        st.rerun()  # the last job finished: refresh the whole page (and the model picker)


def runs(where: Any) -> None:
    """Every run on this server, in ``where`` (a container above the form: after a reload a running job
    is what one came back for); a fragment that refreshes once a second while a job runs, so the rest of
    the page stays put."""
    jobs = MANAGER.jobs()
    running = any(j.active for j in jobs)
    with where:
        if not jobs:
            st.info("No training run yet. Choose the settings below and press **Start training**.")
            return
        st.subheader("Training runs on this server")
        st.fragment(_panels, run_every=1.0 if running else None)(running)
