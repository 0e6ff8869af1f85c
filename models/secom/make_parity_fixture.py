#!/usr/bin/python3
"""Writes models/secom/parity_fixture.json: a small synthetic stream (drift, missing values, a falling fail rate)
with a format-3 model (boosted stumps on every member) trained by train_base.train and the scores, decision offset and fail rate the reference
OnlineQualityModel gives. The C# test QualityModelTests.Matches_the_python_reference replays it.

    /usr/bin/python3 models/secom/make_parity_fixture.py      # deterministic (seeded)
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_base as tb  # noqa: E402

r = np.random.RandomState(7)
n, width = 260, 12
drift = np.linspace(0, 3, n)[:, None] * r.normal(size=(1, width))
X = r.normal(size=(n, width)) + drift
logit = 1.5 * (X[:, 2] - drift[:, 2]) - 1.0 * (X[:, 7] - drift[:, 7]) - 1.5 - np.linspace(0, 1.5, n)
y = (r.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
X[r.uniform(size=X.shape) < 0.05] = np.nan
X[:, 11] = 4.0  # a constant column: never usable
ntr = 140
dec = {"mode": "eer", "window_pass": 40, "window_fail": 8, "min_fails": 3, "prior": float(y[:ntr].mean()), "prior_alpha": 0.05}
model = tb.train(X, y, ntr, [0.0, 0.05, 0.2], 4, 0.1, 0.05, l2=0.01, decision=dec,
                 mix={"mode": "hedge", "eta": 0.5, "discount": 0.99}, stumps=(3, 25, 0.1, 0.5))
delay = 3
m = tb.OnlineQualityModel(model)
scores, offsets, priors, calibrated, weights = [], [], [], [], []
for t in range(ntr, n):
    s = m.observe(X[t])
    scores.append(s)
    calibrated.append(m.calibrated(s))
    if t - delay >= ntr:
        m.learn(X[t - delay], bool(y[t - delay] == 1))
    offsets.append(m.offset)
    priors.append(m.prior)
    weights.append([float(v) for v in m.pi])
fix = {
    "model": model,
    "delay": delay,
    "runs": [[None if np.isnan(v) else float(v) for v in row] for row in X[ntr:]],
    "failed": [bool(v == 1) for v in y[ntr:]],
    "scores": scores,
    "calibrated": calibrated,
    "offsets": offsets,
    "fail_rates": priors,
    "member_weights": weights,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity_fixture.json")
with open(out, "w") as f:
    json.dump(fix, f)
    f.write("\n")
print("fails in stream", int(y[ntr:].sum()), "of", n - ntr, "final offset", m.offset, "offsets changed", len(set(offsets)), "final member weights", m.pi)
