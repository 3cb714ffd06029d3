"""Per-class time scales: tau_gen and tau_mem from per-checkpoint metrics, with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd


def first_crossing(steps, values, threshold: float, direction: str) -> int | None:
    """Return the first step whose value crosses threshold, or None.

    direction "above": value > threshold (memorisation passes a threshold). direction "at_most":
    value <= threshold (an error reaches its floor). NaN never crosses.
    """
    if direction not in ("above", "at_most"):
        raise ValueError(f"direction must be 'above' or 'at_most', got {direction!r}")
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        crossed = values > threshold if direction == "above" else values <= threshold
    hits = np.flatnonzero(crossed & ~np.isnan(values))
    return int(np.asarray(steps)[hits[0]]) if len(hits) else None


def tau_with_interval(steps, values, replicates, threshold: float, direction: str, level: float) -> dict:
    """Return tau, its percentile bootstrap interval and the share of replicates that reach it.

    replicates has shape (len(steps), B): the metric of bootstrap resample b at each step. A replicate
    that never crosses counts as infinitely late, so an upper bound beyond the last checkpoint is None.
    """
    tau = first_crossing(steps, values, threshold, direction)
    replicates = np.asarray(replicates, dtype=np.float64)
    taus = np.array(
        [first_crossing(steps, replicates[:, b], threshold, direction) for b in range(replicates.shape[1])], dtype=object
    )
    reached = np.array([t is not None for t in taus])
    late = np.array([np.inf if t is None else float(t) for t in taus])
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(late, [tail, 1.0 - tail], method="inverted_cdf") if len(late) else (np.inf, np.inf)
    return {
        "tau": tau,
        "ci_low": None if np.isinf(low) else int(low),
        "ci_high": None if np.isinf(high) else int(high),
        "reached_share": float(reached.mean()) if len(reached) else float("nan"),
    }


def run_timescales(run_id: str, metrics: pd.DataFrame, replicates: dict, settings: dict) -> list[dict]:
    """Compute tau_gen and tau_mem per class of one run.

    metrics: the run's metrics table. replicates: arrays "gen_ratio" and "memorised" of shape
    (checkpoints, classes, B) from the evaluation's bootstrap.
    """
    steps = np.asarray(replicates["steps"])
    n_classes = replicates["memorised"].shape[1]
    rows = []
    for k in range(n_classes):
        of_class = metrics[metrics["class"] == k].set_index("step")
        sw2 = of_class[of_class["metric"] == "gen_error_sw2"]["value"].reindex(steps)
        floor = of_class[of_class["metric"] == "gen_error_floor"]["value"].reindex(steps)
        memorised = of_class[of_class["metric"] == "memorised_fraction"]["value"].reindex(steps)
        gen = tau_with_interval(
            steps, (sw2 / floor).to_numpy(), replicates["gen_ratio"][:, k], settings["gen_factor"], "at_most", settings["confidence_level"]
        )
        mem = tau_with_interval(
            steps, memorised.to_numpy(), replicates["memorised"][:, k], settings["mem_threshold"], "above", settings["confidence_level"]
        )
        rows.append(
            {
                "run_id": run_id,
                "class": k,
                **{f"tau_gen{suffix}": gen[key] for suffix, key in (("", "tau"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"), ("_reached_share", "reached_share"))},
                **{f"tau_mem{suffix}": mem[key] for suffix, key in (("", "tau"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"), ("_reached_share", "reached_share"))},
                "gen_factor": settings["gen_factor"],
                "mem_threshold": settings["mem_threshold"],
                "confidence_level": settings["confidence_level"],
                "bootstrap_samples": replicates["memorised"].shape[2],
            }
        )
    return rows


def learning_order(timescales: pd.DataFrame) -> pd.DataFrame:
    """Return, per run, the class that reaches tau_gen first ("tie" when several do at once, "none")."""
    rows = []
    for run_id, group in timescales.groupby("run_id"):
        reached = group.dropna(subset=["tau_gen"])
        if reached.empty:
            first = "none"
        else:
            earliest = reached[reached["tau_gen"] == reached["tau_gen"].min()]
            first = "tie" if len(earliest) > 1 else f"class {int(earliest['class'].iloc[0])}"
        rows.append({"run_id": run_id, "first_class": first})
    return pd.DataFrame(rows)


def copies_rows(run_id: str, steps, nearest, memorised, train_labels) -> list[dict]:
    """Return which training points are copied, by which samples, from which checkpoint on.

    nearest and memorised have shape (checkpoints, samples). stable_from_step is the earliest step from
    which one sample copies the point at every later checkpoint.
    """
    steps = np.asarray(steps)
    nearest, memorised = np.asarray(nearest), np.asarray(memorised, dtype=bool)
    rows = []
    for point in np.unique(nearest[memorised]):
        copying = memorised & (nearest == point)
        samples = np.flatnonzero(copying.any(axis=0))
        first = int(steps[np.flatnonzero(copying.any(axis=1))[0]])
        stable = None
        for sample in samples:
            column = copying[:, sample]
            if column[-1]:
                gaps = np.flatnonzero(~column)
                since = int(steps[gaps[-1] + 1]) if len(gaps) else int(steps[0])
                stable = since if stable is None else min(stable, since)
        rows.append(
            {
                "run_id": run_id,
                "train_index": int(point),
                "train_class": int(train_labels[point]),
                "first_step": first,
                "stable_from_step": stable,
                "copied_by": samples.astype(np.int32).tolist(),
            }
        )
    return rows
