#!/usr/bin/python3
"""Honest selection of the format-2 quality model (drift-adaptive ensemble + balanced decision) on SECOM.

    /usr/bin/python3 models/secom/select_v2.py [DATA_DIR]      # default ../shared/data/secom; deterministic

1. Every candidate is scored on two forward-chaining folds inside the earliest 60 % of the development runs
   (train on [0, a), stream [a, b) test-then-train with labels at once: (a, b) = (329, 493), (493, 658)).
   The setting with the best mean inner ROC AUC is selected (drift rates, columns k, C, online step, member mix:
   mean or hedge); then the decision rule (none / eer with 20 or 40 fails) by the mean inner balanced accuracy.
2. The later 40 % (runs 658..1096, 12 fails) is scored once per candidate (delay 0 and 10) with a 95 % bootstrap
   interval, for the report only -- nothing is selected on it.
3. Second check with more fails: forward chaining over the whole development file in blocks (train on [0, t),
   stream the next 110 runs) for t = 329, 439, ..., 987; mean block AUC and pooled AUC.
The streaming uses the reference OnlineQualityModel of train_base.py (the arithmetic the C# learner implements).
"""
import itertools
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_base as tb  # noqa: E402

DATA = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/secom"
X, y = tb.load(DATA + "/secom_dev.data", DATA + "/secom_dev_labels.data")
n = len(y)
cut = int(n * 0.6)
FOLDS = [(int(cut * 0.5), int(cut * 0.75)), (int(cut * 0.75), cut)]
ALPHAS = {
    "frozen": (0.0,),
    "a0.1": (0.1,),
    "ens5": (0.01, 0.02, 0.05, 0.1, 0.2),
    "ens-hi": (0.05, 0.1, 0.2, 0.3),
}


def bacc(p, yt):
    pred = p >= 0.5
    tpr = (pred & (yt == 1)).sum() / max(1, (yt == 1).sum())
    tnr = (~pred & (yt == 0)).sum() / max(1, (yt == 0).sum())
    return (tpr + tnr) / 2


def boot_ci(p, yt, B=1000, seed=1):
    r = np.random.RandomState(seed)
    a = []
    for _ in range(B):
        i = r.randint(0, len(yt), len(yt))
        if yt[i].min() != yt[i].max():
            a.append(roc_auc_score(yt[i], p[i]))
    return np.percentile(a, 2.5), np.percentile(a, 97.5)


MIXES = {"mean": {"mode": "mean", "eta": 0.0, "discount": 1.0},
         "hedge0.5": {"mode": "hedge", "eta": 0.5, "discount": 0.99},
         "hedge2": {"mode": "hedge", "eta": 2.0, "discount": 0.99}}
DECISIONS = {"none": ("none", 20, 5), "eer20": ("eer", 20, 5), "eer40": ("eer", 40, 10)}


def run(a, b, alphas, k, C, lr, mix, dname, delay):
    dec = tb.default_decision(float(y[:a].mean()))
    dec["mode"], dec["window_fail"], dec["min_fails"] = DECISIONS[dname]
    model = tb.train(X, y, a, alphas, k, C, lr, decision=dec, mix=MIXES[mix])
    return tb.stream(model, X[a:b], y[a:b], delay)


def main():
    grid = [g + ("mean",) for g in itertools.product(ALPHAS, [10, 20], [0.01, 0.1], [0.0, 0.01])]
    grid += [g for g in itertools.product(["ens5", "ens-hi"], [10, 20], [0.01, 0.1], [0.0, 0.01], ["hedge0.5", "hedge2"])]
    rows = []
    for an, k, C, lr, mix in grid:
        ps = [run(a, b, ALPHAS[an], k, C, lr, mix, "none", 0) for a, b in FOLDS]
        aucs = [roc_auc_score(y[a:b], p) for p, (a, b) in zip(ps, FOLDS)]
        rows.append((float(np.mean(aucs)), an, k, C, lr, mix, aucs))
        print("inner auc %.3f  %-6s k=%d C=%g lr=%g mix=%-8s folds %s" % (rows[-1][0], an, k, C, lr, mix, np.round(aucs, 3)), flush=True)
    rows.sort(key=lambda r: -r[0])
    best = rows[0]
    print("selected on inner AUC:", best[1:6])
    # decision rule, selected on inner balanced accuracy
    decs = {}
    for mode in DECISIONS:
        res = []
        for a, b in FOLDS:
            p = run(a, b, ALPHAS[best[1]], best[2], best[3], best[4], best[5], mode, 0)
            res.append((roc_auc_score(y[a:b], p), bacc(p, y[a:b])))
        decs[mode] = res
        print("decision %-4s inner auc %s  bacc %s (mean %.3f)" % (mode, np.round([r[0] for r in res], 3), np.round([r[1] for r in res], 3), np.mean([r[1] for r in res])), flush=True)
    mode = max(decs, key=lambda m: np.mean([r[1] for r in decs[m]]))
    print("selected decision:", mode)
    # held-out, once per candidate (report only): the top 6 by inner AUC plus the frozen baseline
    show = rows[:6] + [r for r in rows if r[1] == "frozen" and r not in rows[:6]][:1]
    for r in show:
        for m in DECISIONS:
            for d in (0, 10):
                p = run(cut, n, ALPHAS[r[1]], r[2], r[3], r[4], r[5], m, d)
                lo, hi = boot_ci(p, y[cut:])
                print("held-out %-6s k=%d C=%g lr=%g mix=%-8s dec=%-5s delay=%2d  inner %.3f  auc %.3f (%.3f-%.3f)  pr %.3f  bacc %.3f"
                      % (r[1], r[2], r[3], r[4], r[5], m, d, r[0], roc_auc_score(y[cut:], p), lo, hi,
                         __import__("sklearn.metrics").metrics.average_precision_score(y[cut:], p), bacc(p, y[cut:])), flush=True)
    # labels-only baseline on the held-out part (EW fail rate, alpha 0.05, as QualityStream.LabelsOnly)
    for d in (0, 10):
        rate, p = 0.07, np.zeros(n - cut)
        for i, t in enumerate(range(cut, n)):
            p[i] = rate
            s = t - d
            if s >= cut:
                rate = 0.95 * rate + 0.05 * y[s]
        print("labels-only delay=%d auc %.3f" % (d, roc_auc_score(y[cut:], p)))
    # second check: blocks over the whole development file, selected setting and frozen baseline
    for name, (an, k, C, lr, mix), dm in (("selected", best[1:6], mode), ("frozen", ("frozen", 10, 1.0, 0.01, "mean"), "none")):
        for d in (0, 10):
            P, Y, per = [], [], []
            for t in range(329, n - 1, 110):
                e = min(n, t + 110)
                p = run(t, e, ALPHAS[an], k, C, lr, mix, dm, d)
                P.append(p); Y.append(y[t:e])
                if y[t:e].min() != y[t:e].max():
                    per.append(roc_auc_score(y[t:e], p))
            P = np.concatenate(P); Y = np.concatenate(Y)
            lo, hi = boot_ci(P, Y)
            print("blocks %-8s delay=%2d  mean block auc %.3f (%d blocks)  pooled auc %.3f (%.3f-%.3f) over %d fails  pooled bacc %.3f"
                  % (name, d, np.mean(per), len(per), roc_auc_score(Y, P), lo, hi, int(Y.sum()), bacc(P, Y)), flush=True)


if __name__ == "__main__":
    main()
