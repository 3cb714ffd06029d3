"""Training of one run: epsilon-prediction DDPM loss, log-spaced checkpoints, per-bucket loss log, resume."""

from __future__ import annotations

import copy
import io
import logging
import math
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel

from heterodiff import tables
from heterodiff.data import MixtureDataset
from heterodiff.models import MLPDenoiser, count_parameters
from heterodiff.runtime import atomic_write_bytes, describe_device, select_device

log = logging.getLogger("heterodiff")

STATE_DIR = ".train_state"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Preempted(SystemExit):
    """SIGTERM arrived; the state was written and the process exits non-zero so the job can be retried."""


def checkpoint_steps(train: dict) -> list[int]:
    """Return the checkpoint steps, fixed in advance; the last one is always train.steps."""
    if train["checkpoint_steps"] is not None:
        return sorted(set(train["checkpoint_steps"]) | {train["steps"]})
    first, last, count = train["checkpoint_first"], train["steps"], train["checkpoints"]
    if count == 1 or first >= last:
        return [last]
    if train["checkpoint_spacing"] == "log":
        steps = np.geomspace(first, last, count)
    else:
        steps = np.linspace(first, last, count)
    return sorted({int(round(s)) for s in steps} | {last})


def make_scheduler(diffusion: dict) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=diffusion["num_train_timesteps"],
        beta_schedule=diffusion["beta_schedule"],
        beta_start=diffusion["beta_start"],
        beta_end=diffusion["beta_end"],
        clip_sample=diffusion["clip_sample"],
        prediction_type="epsilon",
    )


def make_model(model: dict, dim: int) -> MLPDenoiser:
    return MLPDenoiser(dim=dim, width=model["width"], depth=model["depth"], time_embedding_dim=model["time_embedding_dim"])


def make_denoiser(params: dict, dataset) -> torch.nn.Module:
    """Build the run's denoiser: the MLP for mixtures, the U-Net (on flat rows) for images."""
    if params["data"]["kind"] == "images":
        from heterodiff.image_models import make_unet

        return make_unet(params["model"]["unet"], dataset.image_shape)
    return make_model(params["model"], dataset.dim)


def _make_optimizer(train: dict, model: torch.nn.Module) -> torch.optim.Optimizer:
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[train["optimizer"]]
    return optimizer_class(model.parameters(), lr=train["learning_rate"], weight_decay=train["weight_decay"])


@dataclass
class LossBuckets:
    """Running sums of the per-sample loss in equal-width timestep intervals, between two log rows."""

    buckets: int
    timesteps: int
    device: torch.device
    sums: torch.Tensor = field(init=False)
    counts: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.reset()

    def reset(self):
        self.sums = torch.zeros(self.buckets, dtype=torch.float64, device=self.device)
        self.counts = torch.zeros(self.buckets, dtype=torch.float64, device=self.device)

    def add(self, per_sample_loss: torch.Tensor, t: torch.Tensor):
        index = (t * self.buckets) // self.timesteps
        self.sums.index_add_(0, index, per_sample_loss.detach().double())
        self.counts.index_add_(0, index, torch.ones_like(per_sample_loss, dtype=torch.float64))

    def rows(self, step: int) -> list[dict]:
        sums, counts = self.sums.cpu().numpy(), self.counts.cpu().numpy()
        edges = np.linspace(0, self.timesteps, self.buckets + 1)
        rows = [
            {"step": step, "bucket": None, "t_min": 0, "t_max": self.timesteps - 1, "loss": sums.sum() / counts.sum(), "count": int(counts.sum())}
        ]
        for b in range(self.buckets):
            t_min, t_max = int(math.ceil(edges[b])), int(math.ceil(edges[b + 1])) - 1
            loss = sums[b] / counts[b] if counts[b] else float("nan")
            rows.append({"step": step, "bucket": b, "t_min": t_min, "t_max": t_max, "loss": loss, "count": int(counts[b])})
        return rows


class _SigtermFlag:
    """Turn SIGTERM into a flag that the training loop checks after each step."""

    def __init__(self):
        self.raised = False
        self.previous = None

    def __enter__(self):
        self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self.previous)


def _save_checkpoint(directory: Path, model: MLPDenoiser, ema: EMAModel | None) -> None:
    """Write one checkpoint through a temporary folder, so a folder that exists is always complete."""
    temporary = directory.with_name(directory.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(temporary / "model")
    if ema is not None:
        averaged = copy.deepcopy(model)
        ema.copy_to(averaged.parameters())
        averaged.save_pretrained(temporary / "ema")
    shutil.rmtree(directory, ignore_errors=True)
    temporary.rename(directory)


class TrainingState:
    """The resumable state of a run, kept under the run folder but outside Snakemake's declared outputs.

    Snakemake deletes the outputs of a failed job. Checkpoints and the state therefore live in
    STATE_DIR until training ends, and a retry after a kill or preemption continues from the last state.
    Two generations are kept, so a state truncated by a kill during its write falls back to the previous.
    """

    def __init__(self, run_dir: Path):
        self.root = Path(run_dir) / STATE_DIR
        self.checkpoints = self.root / "checkpoints"
        self.current = self.root / "state.pt"
        self.previous = self.root / "state.previous.pt"

    def save(self, payload: dict) -> None:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        if self.current.exists():
            self.current.replace(self.previous)
        atomic_write_bytes(self.current, buffer.getvalue())

    def load(self, fingerprint: str) -> dict | None:
        for path in (self.current, self.previous):
            if not path.exists():
                continue
            try:
                payload = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as error:  # torch raises several types for truncated or corrupt files
                log.warning("training state %s is corrupt (%s); trying an older one", path, error)
                continue
            if payload.get("fingerprint") != fingerprint:
                log.warning("training state %s belongs to other parameters; ignoring it", path)
                continue
            return payload
        return None

    def reset(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.checkpoints.mkdir(parents=True)


def _fingerprint(params: dict, train_sha256: str) -> str:
    """Identify the parameters and data of a run, so a state is only resumed by the same run."""
    import hashlib
    import json

    payload = json.dumps({"params": params, "train": train_sha256}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def train_run(params: dict, dataset: MixtureDataset, run_dir: str | Path, checkpoints_out: str | Path, log_out: str | Path) -> dict:
    """Train one run and write its checkpoints folder and loss log; return facts for spec.yaml."""
    run_dir = Path(run_dir)
    train, seed = params["train"], params["seed"]
    device = select_device(train["device"])
    steps_to_save = set(checkpoint_steps(train))
    fingerprint = _fingerprint({k: params[k] for k in ("data", "model", "diffusion", "train", "seed")}, dataset.train_sha256())

    torch.manual_seed(seed)
    model = make_denoiser(params, dataset).to(device)
    optimizer = _make_optimizer(train, model)
    ema = EMAModel(model.parameters(), decay=train["ema_decay"]) if train["ema_decay"] is not None else None
    scheduler = make_scheduler(params["diffusion"])
    generator = torch.Generator().manual_seed(seed)
    x_train = torch.from_numpy(dataset.x_train).to(device)
    n, timesteps = len(x_train), params["diffusion"]["num_train_timesteps"]
    buckets = LossBuckets(train["loss_buckets"], timesteps, device)
    log_rows: list[dict] = []
    start_step = 0

    state = TrainingState(run_dir)
    payload = state.load(fingerprint)
    if payload is not None:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        if ema is not None:
            ema.load_state_dict(payload["ema"])
        generator.set_state(payload["generator"])
        buckets.sums, buckets.counts = payload["bucket_sums"].to(device), payload["bucket_counts"].to(device)
        log_rows, start_step = payload["log_rows"], payload["step"]
        log.info("resuming from step %d (state in %s)", start_step, state.root)
    else:
        state.reset()

    log.info(
        "run %s: %d parameters, %d training samples of dim %d in %d classes, device %s",
        run_dir.name, count_parameters(model), n, dataset.dim, dataset.n_classes, describe_device(device),
    )
    log.info(
        "steps %d, batch %d, %s lr %g, EMA %s, checkpoints at %s",
        train["steps"], train["batch_size"], train["optimizer"], train["learning_rate"], train["ema_decay"], sorted(steps_to_save),
    )

    def snapshot(step: int) -> dict:
        return {
            "fingerprint": fingerprint,
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "generator": generator.get_state(),
            "bucket_sums": buckets.sums.cpu(),
            "bucket_counts": buckets.counts.cpu(),
            "log_rows": log_rows,
        }

    last_checkpoint = max((s for s in steps_to_save if s <= start_step), default=None)
    started, started_step = time.perf_counter(), start_step
    model.train()
    with _SigtermFlag() as sigterm:
        for step in range(start_step + 1, train["steps"] + 1):
            # Draw a minibatch, a timestep per sample and the noise, all from the run's own generator.
            index = torch.randint(n, (train["batch_size"],), generator=generator).to(device)
            t = torch.randint(timesteps, (train["batch_size"],), generator=generator).to(device)
            noise = torch.randn((train["batch_size"], dataset.dim), generator=generator).to(device)

            # Noise the batch with the forward process and regress the noise.
            xt = scheduler.add_noise(x_train[index], noise, t)
            per_sample = ((model(xt, t) - noise) ** 2).mean(dim=1)
            loss = per_sample.mean()

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.step(model.parameters())
            buckets.add(per_sample, t)

            is_log_step = step % train["log_every"] == 0 or step == train["steps"]
            if is_log_step or step in steps_to_save or step % train["state_every"] == 0 or sigterm.raised:
                # Check the loss before anything is written, so no checkpoint or state contains diverged weights.
                overall = (buckets.sums.sum() / buckets.counts.sum()).item()
                if not math.isfinite(overall):
                    last_logged = log_rows[-1]["step"] if log_rows else 0
                    raise TrainingDiverged(
                        f"loss is {overall} at step {step} (mean over steps {last_logged + 1} to {step}); "
                        f"last good checkpoint: {last_checkpoint if last_checkpoint else 'none'}. "
                        f"Lower train.learning_rate (now {train['learning_rate']}) or check the data."
                    )

            if is_log_step:
                rows = buckets.rows(step)
                overall = rows[0]["loss"]
                log_rows.extend(rows)
                buckets.reset()
                rate = (step - started_step) / max(time.perf_counter() - started, 1e-9)
                log.info("step %d/%d  steps/s %.0f  loss %.5f", step, train["steps"], rate, overall)

            if step in steps_to_save:
                _save_checkpoint(state.checkpoints / f"step_{step:09d}", model, ema)
                last_checkpoint = step
            if step % train["state_every"] == 0 or step in steps_to_save or sigterm.raised:
                state.save(snapshot(step))
            if sigterm.raised:
                log.warning("SIGTERM at step %d: state written to %s; exiting for a retry", step, state.current)
                raise Preempted(1)

    # Publish the declared outputs: the loss log, then the checkpoints folder in one rename.
    tables.write_table(pd.DataFrame(log_rows).assign(run_id=run_dir.name), tables.TRAIN_LOG, log_out)
    checkpoints_out = Path(checkpoints_out)
    shutil.rmtree(checkpoints_out, ignore_errors=True)
    scheduler.save_pretrained(state.checkpoints / "scheduler")
    state.checkpoints.rename(checkpoints_out)
    shutil.rmtree(state.root, ignore_errors=True)
    log.info("finished %d steps; checkpoints in %s", train["steps"], checkpoints_out)
    return {"device": device, "n_parameters": count_parameters(model), "checkpoint_steps": sorted(steps_to_save)}
