#!/usr/bin/python3
"""Base quality model for the simulated packaging line's capper (S2): process_temperature, process_pressure -> rejected.

Generates parts with the equations of src/EdgeTwin.Simulator/Line/SimLine.cs (Station.Step / Station.Complete):
tool wear w = parts since the last tool change / tool life (400), sealing temperature lagging towards
180 + 22 w^2 (time constant 5 s, sensor noise), pressure 6.0 bar running / 5.6 stopped + N(0, 0.05), and
reject probability base + 0.35 / (1 + exp(-(T - 194) / 2)). The value the twin sees is the latest poll before the
counter step, so the temperature is sampled up to one poll (1 s) before the part completes.
Fits a class-balanced logistic regression (sklearn) on standardised inputs and writes the
edgetwin-online-logistic/2 file that LineTwinStage loads. Reproducible: seeds pinned.

    /usr/bin/python3 models/line-quality/train_sim_quality.py [--out models/line-quality/sim-line-quality.json]
"""
import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

SEED = 20261201
TOOL_LIFE = 400
CYCLE_S = 2.3          # S2's mean actual cycle in the packaging line (1.8-2.1 s ideal + speed loss)
POLL_S = 1.0


def simulate(rng, tool_cycles):
    temps, press, rejected = [], [], []
    temp = 180.0
    for _ in range(tool_cycles):
        base = rng.uniform(0.003, 0.01)
        for k in range(TOOL_LIFE):
            w = k / TOOL_LIFE
            target = 180 + 22 * w * w
            # first-order lag over one cycle (50 ms sub-steps), as SimLine does
            for _ in range(int(CYCLE_S / 0.05)):
                temp += (target - temp) * (0.05 / 5) + 0.05 * rng.standard_normal() * np.sqrt(0.05)
            seen = temp - (target - temp) * rng.uniform(0, POLL_S) / 5  # the last poll, up to 1 s earlier
            p = base + 0.35 / (1 + np.exp(-(temp - 194) / 2.0))
            temps.append(seen)
            press.append(6.0 + 0.05 * rng.standard_normal() if rng.uniform() < 0.9 else 5.6 + 0.05 * rng.standard_normal())
            rejected.append(rng.uniform() < p)
        # tool change: 60 s setup, temperature relaxes towards 180
        for _ in range(int(60 / 0.05)):
            temp += (180 - temp) * (0.05 / 5)
    return np.column_stack([temps, press]), np.array(rejected)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/line-quality/sim-line-quality.json")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    x, y = simulate(rng, 40)
    xt, yt = simulate(np.random.default_rng(SEED + 1), 20)  # held-out tool cycles
    mean, var = x.mean(axis=0), x.var(axis=0)
    z = np.clip((x - mean) / np.sqrt(var), -5, 5)
    zt = np.clip((xt - mean) / np.sqrt(var), -5, 5)
    clf = LogisticRegression(class_weight="balanced", C=1.0, random_state=SEED, max_iter=1000).fit(z, y)
    auc = roc_auc_score(yt, clf.decision_function(zt))
    rate = float(y.mean())
    n, nf = len(y), int(y.sum())
    model = {
        "format": "edgetwin-online-logistic/2",
        "trained_on": {"parts": n, "rejects": nf, "data": "train_sim_quality.py simulate(seed=%d, 40 tool cycles)" % SEED,
                       "held_out_roc_auc": round(float(auc), 4), "inputs": ["process_temperature", "process_pressure"]},
        "input_width": 2,
        "clip": 5.0,
        "learning_rate": 0.002,
        "l2": 0.0001,
        "weight_fail": n / (2 * nf),
        "weight_pass": n / (2 * (n - nf)),
        "members": [{
            # alpha 0: frozen standardisation. The drift *is* the signal here (tool wear heats the sealer); a
            # label-free EW mean would follow the temperature up and hide it.
            "alpha": 0.0,
            "columns": [0, 1],
            "mean": [float(v) for v in mean],
            "var": [float(v) for v in var],
            "weights": [float(v) for v in clf.coef_[0]],
            "bias": float(clf.intercept_[0]),
        }],
        "mix": {"mode": "mean"},
        "decision": {"mode": "none", "prior": rate, "prior_alpha": 0.002},
    }
    with open(args.out, "w") as f:
        json.dump(model, f, indent=1)
        f.write("\n")
    print("parts %d rejects %d (%.2f %%), held-out ROC AUC %.4f, weights %s bias %.3f" % (
        n, nf, 100 * rate, auc, clf.coef_[0], clf.intercept_[0]))


if __name__ == "__main__":
    main()
