#!/usr/bin/python3
"""Nested selection: one fixed procedure chooses the design from the runs it is given, and is itself checked on a
time split.

    /usr/bin/python3 models/secom/select_v5.py [DATA_DIR]      # default ../shared/data/secom; deterministic
    /usr/bin/python3 models/secom/select_v5.py DATA_DIR --extra-checks   # the same check at 50 % and 70 % (report only)

Why (10th session): select_v2..v4 chose the shipped design on two folds inside the earliest 60 % of the development
runs, and then trained that design on all of them. The later 40 % never took part in any choice, which keeps its
figure honest, but the design that ships was chosen on the oldest data only, while the runs the gateway will meet
come after the newest. This script separates the two roles:

    P(m) = the procedure applied to the first m runs: every candidate is trained on the first s = int(0.6 m) runs and
           streamed test-then-train over runs [s, m), once with labels at once and once with a 10-run delay (the way
           a gateway meets runs after its base model was trained: a long stream, not short blocks).
           Score = mean of the two ROC AUCs. The highest score wins; ties within 0.002 go to the smaller learning
           rate, then to fewer members, then to no stumps. Then the decision rule (none / eer 20 / eer 40) by the
           mean of its balanced accuracies at 0.5 over the two delays on the same stream (ties to none).
    Check (reported, chooses nothing): P(658) on the earliest 60 %, its choice trained on those 658 runs
           (`secom-base-dev60.json`) and streamed over the later 40 % (runs 658..1096, never seen by P(658)).
           This is the honest time-split figure of the procedure.
    Ship:  P(1097) on all development runs, its choice trained on all of them (`secom-base.json`). Its own selection
           score is not an estimate (it was chosen on it); the check above is.

Candidates (fixed before the first run; all learn from labels, lr > 0, as issue 11 requires):
    drift set {frozen, a0.1, ens5, ens-hi} x mix {mean, hedge 0.5, hedge 2 (ensembles only)} x k {10, 20}
    x C {0.01, 0.1} x lr {0.003, 0.01, 0.03}, plus the stump design (a0.1 + 0.25 x 200 stumps on 5 columns) with
    the same k, C and lr.
"""
import itertools
import os
import sys

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_base as tb  # noqa: E402
from select_v2 import ALPHAS, DECISIONS, MIXES, X, bacc, boot_ci, n, y  # noqa: E402

STUMPS = (5, 200, 0.05, 0.25)
TIE = 0.002


def candidates():
    out = []
    for drift, mix in [("frozen", "mean"), ("a0.1", "mean"), ("ens5", "mean"), ("ens5", "hedge0.5"), ("ens5", "hedge2"),
                       ("ens-hi", "mean"), ("ens-hi", "hedge0.5"), ("ens-hi", "hedge2"), ("a0.1+stumps", "mean")]:
        for k, C, lr in itertools.product((10, 20), (0.01, 0.1), (0.003, 0.01, 0.03)):
            out.append((drift, mix, k, C, lr))
    return out


def describe(c):
    drift, mix, k, C, lr = c
    return "%-11s %-8s k=%-2d C=%-4g lr=%g" % (drift, mix, k, C, lr)


def model(c, a, dname="none"):
    drift, mix, k, C, lr = c
    dec = tb.default_decision(float(y[:a].mean()))
    dec["mode"], dec["window_fail"], dec["min_fails"] = DECISIONS[dname]
    if drift == "a0.1+stumps":
        return tb.train(X, y, a, ALPHAS["a0.1"], k, C, lr, decision=dec, mix=MIXES[mix], stumps=STUMPS)
    return tb.train(X, y, a, ALPHAS[drift], k, C, lr, decision=dec, mix=MIXES[mix])


def stream(c, a, b, delay, dname="none"):
    return tb.stream(model(c, a, dname), X[a:b], y[a:b], delay)


def simplicity(c):
    drift, mix, _, _, lr = c
    members = len(ALPHAS["a0.1" if drift == "a0.1+stumps" else drift])
    return (lr, members, drift == "a0.1+stumps")


def procedure(m):
    s = int(0.6 * m)
    print("P(%d): train on [0, %d), stream [%d, %d): %d runs, %d fails" % (m, s, s, m, m - s, int(y[s:m].sum())), flush=True)
    rows = []
    for c in candidates():
        a0 = roc_auc_score(y[s:m], stream(c, s, m, 0))
        a10 = roc_auc_score(y[s:m], stream(c, s, m, 10))
        rows.append(((a0 + a10) / 2, a0, a10, c))
        print("  P(%d) %.3f (d0 %.3f, d10 %.3f)  %s" % (m, rows[-1][0], a0, a10, describe(c)), flush=True)
    top = max(r[0] for r in rows)
    chosen = min((r for r in rows if r[0] >= top - TIE), key=lambda r: simplicity(r[3]))
    decs = {d: float(np.mean([bacc(stream(chosen[3], s, m, dl, d), y[s:m]) for dl in (0, 10)])) for d in DECISIONS}
    dname = max(decs, key=lambda d: (decs[d], d == "none"))
    print("P(%d) CHOSEN: %s  score %.3f; decision %s (bacc %s)"
          % (m, describe(chosen[3]), chosen[0], dname, {d: round(v, 3) for d, v in decs.items()}), flush=True)
    ranked = sorted(rows, key=lambda r: -r[0])
    return chosen[3], dname, ranked


def report(c, dname, a, b, label):
    for delay in (0, 10):
        p = stream(c, a, b, delay, dname)
        lo, hi = boot_ci(p, y[a:b])
        print("%s delay %2d: runs %d..%d (%d fails)  ROC AUC %.3f (95 %% %.3f-%.3f)  PR AUC %.3f  bacc %.3f"
              % (label, delay, a, b - 1, int(y[a:b].sum()), roc_auc_score(y[a:b], p), lo, hi,
                 average_precision_score(y[a:b], p), bacc(p, y[a:b])), flush=True)


def extra_checks(fractions=(0.5, 0.7)):
    """The procedure checked at other cuts (reported, chooses nothing): P on the first m runs, its choice trained on them
    and streamed over every later run."""
    for f in fractions:
        m = int(n * f)
        c, dname, _ = procedure(m)
        report(c, dname, m, n, "CHECK at %d %% (P(%d)'s choice on runs %d..%d)" % (round(f * 100), m, m, n - 1))


def main():
    if "--extra-checks" in sys.argv:
        extra_checks()
        return
    cut = int(n * 0.6)
    check, check_dec, _ = procedure(cut)
    report(check, check_dec, cut, n, "CHECK (P(%d)'s choice on the later 40 %%)" % cut)
    ship, ship_dec, ranked = procedure(n)
    print("SHIP: %s decision %s" % (describe(ship), ship_dec))
    print("top 10 of P(%d):" % n)
    for r in ranked[:10]:
        print("  %.3f (d0 %.3f, d10 %.3f)  %s" % (r[0], r[1], r[2], describe(r[3])))


if __name__ == "__main__":
    main()
