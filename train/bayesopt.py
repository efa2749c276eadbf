"""A small constrained Bayesian optimiser for a handful of expensive samples
(Condensa, Joseph et al., MLSys 2020, section 4: a Gaussian process over the
compression hyperparameters and an acquisition that trades the objective
against the accuracy constraint).

Minimises f(x) over a box subject to c(x) >= threshold, where one call
returns both (the objective, e.g. the encoder's latency, and the constraint
value, e.g. validation top-1). Two Gaussian processes with a Matern 5/2
kernel model f and c; the next sample maximises the expected improvement on
the best feasible f times the probability of feasibility P(c >= threshold)
(Gardner et al., ICML 2014), or the probability of feasibility alone while
no sample is feasible. The kernel's length scale and noise are picked per
fit by the marginal likelihood over a small grid; the acquisition is
maximised over random candidates in the box. numpy only.
"""
from __future__ import annotations

import math

import numpy as np

LENGTH_SCALES = np.geomspace(0.05, 2.0, 12)  # in units of the (unit-scaled) box
NOISES = (1e-6, 1e-3, 1e-2, 1e-1)  # variance, relative to the normalised targets


def matern52(a, b, length_scale):
    """The Matern 5/2 kernel (unit variance) between the rows of a (n, d) and b (m, d)."""
    d = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0)) / length_scale
    s5 = math.sqrt(5.0) * d
    return (1.0 + s5 + 5.0 / 3.0 * d * d) * np.exp(-s5)


class GP:
    """A zero-mean Gaussian process on targets normalised to mean 0 and
    standard deviation 1, with a Matern 5/2 kernel; fit picks the length
    scale and the noise variance that maximise the marginal likelihood."""

    def fit(self, x, y):
        self.x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
        y = np.asarray(y, dtype=np.float64)
        self.mean = float(y.mean())
        self.scale = float(y.std()) or 1.0
        z = (y - self.mean) / self.scale
        best = None
        for ls in LENGTH_SCALES:
            k = matern52(self.x, self.x, ls)
            for noise in NOISES:
                try:
                    chol = np.linalg.cholesky(k + noise * np.eye(len(z)))
                except np.linalg.LinAlgError:
                    continue
                alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
                lml = -0.5 * z @ alpha - np.log(np.diag(chol)).sum()
                if best is None or lml > best[0]:
                    best = (lml, ls, noise, chol, alpha)
        if best is None:
            raise np.linalg.LinAlgError("no kernel of the grid gives a positive definite matrix")
        self.log_marginal, self.length_scale, self.noise, self._chol, self._alpha = best
        return self

    def predict(self, x):
        """Posterior mean and standard deviation of f (not of a noisy
        observation) at the rows of x, in the targets' units."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.x.shape[1])
        ks = matern52(x, self.x, self.length_scale)
        mu = ks @ self._alpha
        v = np.linalg.solve(self._chol, ks.T)
        var = np.maximum(1.0 - (v * v).sum(0), 1e-12)
        return mu * self.scale + self.mean, np.sqrt(var) * self.scale


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z):
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def expected_improvement(mu, sd, best):
    """E[max(best - f, 0)] for f ~ N(mu, sd^2) (minimisation)."""
    sd = np.maximum(sd, 1e-12)
    z = (best - mu) / sd
    return (best - mu) * _cdf(z) + sd * _phi(z)


def probability_of_feasibility(mu, sd, threshold):
    """P(c >= threshold) for c ~ N(mu, sd^2)."""
    return _cdf((mu - threshold) / np.maximum(sd, 1e-12))


def _snapped(points, snap):
    return points if snap is None else np.array([snap(p) for p in points])


def propose(x, f, c, threshold, lower, upper, rng, candidates=4096, snap=None):
    """The next point to sample, given the samples so far (x: (n, d); f, c: (n,)),
    and {"acquisition", "f_mu", "f_sd", "c_mu", "c_sd"}: the acquisition's value
    and the GPs' predictions there (f's are None while no sample is feasible).
    snap, if given, maps a point to the one actually sampled (e.g. a ratio to
    the ratio of a whole number of channels); candidates that snap onto a
    sampled point are left out, so that no sample is spent twice."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    width = upper - lower
    x = np.asarray(x, float).reshape(len(f), -1)
    u = (x - lower) / width  # the GPs work in the unit box
    pts = _snapped(lower + rng.random((candidates, len(lower))) * width, snap)
    new = ~(np.abs(pts[:, None, :] - x[None, :, :]).max(-1) < 1e-9).any(1)
    if new.any():
        pts = pts[new]
    cand = (pts - lower) / width
    cgp = GP().fit(u, c)
    mc, sc = cgp.predict(cand)
    pof = probability_of_feasibility(mc, sc, threshold)
    feasible = np.asarray(c) >= threshold
    mf = sf = None
    if feasible.any():
        mf, sf = GP().fit(u, f).predict(cand)
        acq = expected_improvement(mf, sf, float(np.min(np.asarray(f)[feasible]))) * pof
    else:
        acq = pof
    i = int(np.argmax(acq))
    info = {"acquisition": float(acq[i]), "c_mu": float(mc[i]), "c_sd": float(sc[i]),
            "f_mu": None if mf is None else float(mf[i]), "f_sd": None if sf is None else float(sf[i])}
    return lower + cand[i] * width, info


def minimize(fn, lower, upper, threshold, budget, initial=2, seed=0, trace=None, snap=None):
    """Constrained Bayesian optimisation of fn (x -> (f, c)) in budget calls:
    the first `initial` points spread over the box (a seeded Latin hypercube),
    then one proposal per call. Returns the list of samples {"x", "f", "c",
    "predicted"} (predicted: propose's info, None for the initial points);
    trace, if given, is called with each; snap: as in propose."""
    rng = np.random.default_rng(seed)
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    d = len(lower)
    init = (np.stack([rng.permutation(initial) for _ in range(d)], 1) + rng.random((initial, d))) / initial
    init = (_snapped(lower + init * (upper - lower), snap) - lower) / (upper - lower)
    samples = []
    for k in range(budget):
        if k < initial:
            x, info = lower + init[k] * (upper - lower), None
        else:
            x, info = propose([s["x"] for s in samples], [s["f"] for s in samples], [s["c"] for s in samples],
                             threshold, lower, upper, rng, snap=snap)
        f, c = fn(x)
        samples.append({"x": np.asarray(x, float), "f": float(f), "c": float(c), "predicted": info})
        if trace:
            trace(samples[-1])
    return samples


def random_search(fn, lower, upper, budget, seed=0, trace=None, snap=None):
    """The baseline at the same budget: budget uniform points in the box (with
    snap, redrawn up to 100 times while they snap onto a sampled point)."""
    rng = np.random.default_rng(seed)
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    samples = []
    for _ in range(budget):
        for _ in range(100):
            x = _snapped(lower + rng.random((1, len(lower))) * (upper - lower), snap)[0]
            if not any(np.abs(x - s["x"]).max() < 1e-9 for s in samples):
                break
        f, c = fn(x)
        samples.append({"x": x, "f": float(f), "c": float(c), "predicted": None})
        if trace:
            trace(samples[-1])
    return samples


def best_feasible(samples, threshold):
    """The feasible sample of least f, or None."""
    ok = [s for s in samples if s["c"] >= threshold]
    return min(ok, key=lambda s: s["f"]) if ok else None
