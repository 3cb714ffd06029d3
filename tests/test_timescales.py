"""Time scales from hand-made metric tables: reached, not reached, tied, noisy with bootstrap."""

import numpy as np
import pandas as pd
import pytest

from heterodiff.timescales import copies_rows, first_crossing, learning_order, run_timescales, tau_with_interval

STEPS = [10, 20, 40, 80, 160]
SETTINGS = {"gen_factor": 1.5, "mem_threshold": 0.1, "confidence_level": 0.9}


def test_first_crossing_reached():
    assert first_crossing(STEPS, [0.0, 0.05, 0.2, 0.5, 0.7], 0.1, "above") == 40
    assert first_crossing(STEPS, [5.0, 3.0, 1.4, 1.2, 1.1], 1.5, "at_most") == 40


def test_first_crossing_not_reached():
    assert first_crossing(STEPS, [0.0, 0.01, 0.02, 0.05, 0.09], 0.1, "above") is None
    assert first_crossing(STEPS, [np.nan] * 5, 1.5, "at_most") is None


def test_first_crossing_tied_with_threshold():
    # "Exceeds" is strict for memorisation; "reaches the floor" includes equality.
    assert first_crossing(STEPS, [0.0, 0.1, 0.1, 0.2, 0.3], 0.1, "above") == 80
    assert first_crossing(STEPS, [2.0, 1.5, 1.0, 1.0, 1.0], 1.5, "at_most") == 20


def test_first_crossing_ignores_later_dips():
    assert first_crossing(STEPS, [0.0, 0.2, 0.05, 0.3, 0.4], 0.1, "above") == 20


def test_interval_from_noisy_replicates():
    rng = np.random.default_rng(0)
    truth = np.array([0.0, 0.02, 0.08, 0.3, 0.6])
    replicates = truth[:, None] + rng.normal(0, 0.03, size=(5, 400))
    result = tau_with_interval(STEPS, truth, replicates, 0.1, "above", 0.9)
    assert result["tau"] == 80
    assert result["ci_low"] == 40  # some replicates pass 0.1 at step 40 (0.08 + noise)
    assert result["ci_high"] == 80
    assert result["reached_share"] == 1.0


def test_interval_open_when_replicates_miss():
    replicates = np.tile(np.array([0.0, 0.0, 0.0, 0.0, 0.2])[:, None], (1, 100))
    replicates[4, :60] = 0.05  # 60% of the resamples never pass the threshold
    result = tau_with_interval(STEPS, [0, 0, 0, 0, 0.2], replicates, 0.1, "above", 0.9)
    assert result["tau"] == 160
    assert result["ci_low"] == 160
    assert result["ci_high"] is None
    assert result["reached_share"] == pytest.approx(0.4)


def test_run_timescales_per_class():
    rows = []
    for step, sw2, floor, memorised in zip(STEPS, [3.0, 1.2, 1.0, 1.0, 1.1], [1.0] * 5, [0.0, 0.0, 0.05, 0.2, 0.5]):
        rows += [
            {"step": step, "class": 0, "metric": "gen_error_sw2", "value": sw2},
            {"step": step, "class": 0, "metric": "gen_error_floor", "value": floor},
            {"step": step, "class": 0, "metric": "memorised_fraction", "value": memorised},
            {"step": step, "class": 1, "metric": "gen_error_sw2", "value": 4.0},
            {"step": step, "class": 1, "metric": "gen_error_floor", "value": 1.0},
            {"step": step, "class": 1, "metric": "memorised_fraction", "value": 0.0},
        ]
    metrics = pd.DataFrame(rows)
    gen = np.array([[[3.0], [4.0]], [[1.2], [4.0]], [[1.0], [4.0]], [[1.0], [4.0]], [[1.1], [4.0]]])
    memorised = np.array([[[0.0], [0.0]], [[0.0], [0.0]], [[0.05], [0.0]], [[0.2], [0.0]], [[0.5], [0.0]]])
    result = run_timescales("r", metrics, {"steps": np.array(STEPS), "gen_ratio": gen, "memorised": memorised}, SETTINGS)
    by_class = {row["class"]: row for row in result}
    assert by_class[0]["tau_gen"] == 20
    assert by_class[0]["tau_mem"] == 80
    assert by_class[1]["tau_gen"] is None
    assert by_class[1]["tau_mem"] is None
    assert by_class[0]["mem_threshold"] == 0.1


def test_learning_order_with_tie_and_none():
    table = pd.DataFrame(
        {
            "run_id": ["a", "a", "b", "b", "c", "c"],
            "class": [0, 1, 0, 1, 0, 1],
            "tau_gen": [20, 10, 40, 40, None, None],
        }
    )
    order = dict(learning_order(table).itertuples(index=False))
    assert order == {"a": "class 1", "b": "tie", "c": "none"}


def test_copies_first_and_stable_steps():
    steps = [10, 20, 40]
    nearest = np.array([[5, 1, 2], [5, 1, 2], [5, 3, 2]])
    memorised = np.array([[False, True, False], [True, False, False], [True, True, False]])
    rows = {row["train_index"]: row for row in copies_rows("r", steps, nearest, memorised, {1: 0, 3: 1, 5: 1, 2: 0})}
    assert sorted(rows) == [1, 3, 5]
    assert rows[5]["first_step"] == 20
    assert rows[5]["stable_from_step"] == 20
    assert rows[5]["copied_by"] == [0]
    assert rows[1]["first_step"] == 10
    assert rows[1]["stable_from_step"] is None  # copied at step 10 only
    assert rows[3]["train_class"] == 1


def test_power_law_fit_recovers_slope():
    from heterodiff.dynamics_plots import fit_power_law

    rng = np.random.default_rng(0)
    n = np.repeat([16, 32, 64, 128, 256], 3)
    tau = 20.0 * n * np.exp(rng.normal(0, 0.05, size=len(n)))
    fit = fit_power_law(n, tau)
    assert fit["slope"] == pytest.approx(1.0, abs=0.05)
    assert fit["low"] < fit["slope"] < fit["high"]
    assert fit["high"] - fit["low"] < 0.1
    assert fit["points"] == 15


def test_power_law_fit_skips_unreached():
    from heterodiff.dynamics_plots import fit_power_law

    assert fit_power_law(np.array([16, 32, 64]), np.array([100.0, np.nan, np.nan])) is None
    fit = fit_power_law(np.array([16, 32, 64, 128]), np.array([10.0, 40.0, 160.0, np.nan]))
    assert fit["slope"] == pytest.approx(2.0)
    assert fit["points"] == 3
