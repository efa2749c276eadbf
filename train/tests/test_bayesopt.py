"""The constrained Bayesian optimiser (train/bayesopt.py): the Gaussian
process interpolates and is uncertain away from its data, the acquisition
functions have their closed forms, and within 10 samples the optimiser finds
known 1-D optima, with and without a constraint."""
import math

import numpy as np
import pytest

from train import bayesopt as B


def forrester(x):
    """Forrester et al. (2008): on [0, 1] its global minimum is -6.0207 at x = 0.75725, with a local one near 0.14."""
    return (6 * x - 2) ** 2 * math.sin(12 * x - 4)


def test_gp_interpolates_and_is_uncertain_between_samples():
    x = np.linspace(0, 1, 6)
    y = np.array([forrester(v) for v in x])
    gp = B.GP().fit(x, y)
    mu, sd = gp.predict(x)
    assert np.allclose(mu, y, atol=0.05 * y.std())
    _, sd_mid = gp.predict(np.array([0.1, 0.3, 0.5]))
    assert sd_mid.min() > sd.max()


def test_acquisitions_closed_forms():
    # EI at mu = best: sd * phi(0); far below best: best - mu
    assert B.expected_improvement(np.array([1.0]), np.array([2.0]), 1.0)[0] == pytest.approx(2 / math.sqrt(2 * math.pi))
    assert B.expected_improvement(np.array([-5.0]), np.array([0.01]), 1.0)[0] == pytest.approx(6.0)
    assert B.probability_of_feasibility(np.array([0.5]), np.array([1.0]), 0.5)[0] == pytest.approx(0.5)
    assert B.probability_of_feasibility(np.array([0.9]), np.array([0.1]), 0.5)[0] > 0.99


def test_finds_forrester_minimum_within_10_samples():
    fn = lambda x: (forrester(float(x[0])), 1.0)  # always feasible
    s = B.minimize(fn, [0.0], [1.0], threshold=0.0, budget=10, initial=2, seed=1)
    best = B.best_feasible(s, 0.0)
    assert abs(best["x"][0] - 0.75725) < 0.02, [float(v["x"][0]) for v in s]
    assert best["f"] < -5.9


def test_finds_constrained_optimum_on_its_boundary_within_10_samples():
    # like compression: the cost falls as the ratio x grows, accuracy falls too;
    # accuracy 1 - x^2 >= 0.75 holds up to x = 0.5, the optimum
    fn = lambda x: (1.0 - 0.8 * float(x[0]), 1.0 - float(x[0]) ** 2)
    s = B.minimize(fn, [0.0], [0.9], threshold=0.75, budget=10, initial=2, seed=0)
    best = B.best_feasible(s, 0.75)
    assert best is not None and 0.46 <= best["x"][0] <= 0.5, [float(v["x"][0]) for v in s]
    # random search at the same budget and seed does worse here
    r = B.best_feasible(B.random_search(fn, [0.0], [0.9], 10, seed=0), 0.75)
    assert r is None or r["x"][0] <= best["x"][0]


def test_minimize_respects_budget_and_bounds():
    calls = []
    fn = lambda x: (calls.append(x) or float(x.sum()), float(-x[1]))
    s = B.minimize(fn, [0.0, 0.2], [1.0, 0.5], threshold=-0.3, budget=7, initial=3, seed=2)
    assert len(s) == len(calls) == 7
    for v in s:
        assert 0.0 <= v["x"][0] <= 1.0 and 0.2 <= v["x"][1] <= 0.5
    assert all(v["predicted"] is None for v in s[:3])
    for v in s[3:]:
        p = v["predicted"]
        assert p["acquisition"] >= 0 and p["c_sd"] > 0 and (p["f_mu"] is None) == (p["f_sd"] is None)


def test_snap_never_spends_a_sample_twice():
    # a piecewise-constant objective on a grid of 8 values: 8 samples visit 8 distinct points
    snap = lambda x: np.round(np.asarray(x) * 7) / 7
    fn = lambda x: (float((x[0] - 0.4) ** 2), 1.0)
    for search in (lambda: B.minimize(fn, [0.0], [1.0], 0.0, 8, initial=2, seed=3, snap=snap),
                   lambda: B.random_search(fn, [0.0], [1.0], 8, seed=3, snap=snap)):
        xs = sorted(round(float(s["x"][0]) * 7) for s in search())
        assert xs == list(range(8))
