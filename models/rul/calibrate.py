#!/usr/bin/python3
"""Output calibration of a RUL recipe from its cross-validation out-of-fold predictions (cv_rul.py --oof).

The capped model cannot say more than its cap, while a test cut's true RUL reaches 150; the metric is the
uncapped RMSE. A piecewise-linear map out = g(pred) fitted by weighted least squares on the out-of-fold
predictions of FD001/FD003 (each unit weighs the same, as in the test files) turns the capped output into
the expected uncapped RUL given that output (e.g. "healthy" -> the mean RUL of healthy test cuts).
Its CV effect is measured cross-fitted: for fold k the map is fitted on the other folds' predictions.
Only non-held-out units are involved (the OOF file holds nothing else).

Usage: /usr/bin/python3 models/rul/calibrate.py OOF.npz[,OOF2.npz...] [--knots 0,25,...] [--out calibration.json]
       [--blend GBM.npz[,...] --w 0.7]   (map on w * mean(OOF files) + (1 - w) * mean(blend files))
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cmapss_common import UNCERTAINTY_BANDS, residual_bands  # noqa: E402

TARGETS = ("FD001", "FD003")


CYCLE_SCALE = 200.0  # the model's cycle feature (cmapss_common.CYCLE_SCALE)


def basis(p, knots, cycle=None):
    """Hinge basis: 1, then per segment the clamped ramp; g(p) = c0 + sum c_i * clamp(p - k_i, 0, k_{i+1}-k_i).

    With cycle (the cycle count of the window's last row): two more columns, u = cycle/200 and u * h with
    h = clamp(p - 100, 0, 50) / 50, so the expected RUL of a healthy-looking window may fall as the unit ages.
    """
    cols = [np.ones_like(p)]
    for i in range(len(knots) - 1):
        cols.append(np.clip(p - knots[i], 0, knots[i + 1] - knots[i]))
    cols.append(np.clip(p - knots[-1], 0, None))  # beyond the last knot: linear continuation
    if cycle is not None:
        u = cycle / CYCLE_SCALE
        cols += [u, u * np.clip(p - 100.0, 0, 50.0) / 50.0]
    return np.stack(cols, axis=1)


def fit(p, t, w, knots, cycle=None, ridge=1e-3):
    a = basis(p, knots, cycle)
    aw = a * w[:, None]
    coef = np.linalg.solve(a.T @ aw + ridge * np.eye(a.shape[1]), aw.T @ t)
    return coef


def apply(p, knots, coef, cycle=None):
    return np.clip(basis(p, knots, cycle) @ coef, 0, None)


def rmse_by_unit(d, u, t, p):
    """RMSE with every unit weighing the same (mean of the per-unit mean squared errors)."""
    keys = np.char.add(d.astype(str), u.astype(str))
    per = [np.mean((p[keys == k] - t[keys == k]) ** 2) for k in np.unique(keys)]
    return float(np.sqrt(np.mean(per)))


def temporal_mean(keys, cycle, p, k_max):
    """Causal temporal averaging: at each cut, mean over k < k_max of (prediction k cycles earlier) - k, over the
    earlier cuts of the same unit present in the OOF file (all of them except at a unit's first k_max-1 cuts)."""
    out = p.copy()
    for key in np.unique(keys):
        idx = np.where(keys == key)[0]
        idx = idx[np.argsort(cycle[idx])]
        q = p[idx]
        if np.any(np.diff(cycle[idx]) != 1):
            raise SystemExit(f"{key}: cut cycles are not consecutive")
        acc = np.zeros_like(q)
        cnt = np.zeros_like(q)
        for k in range(k_max):
            acc[k:] += q[:len(q) - k] - k
            cnt[k:] += 1
        out[idx] = acc / cnt
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("oof")
    ap.add_argument("--knots", default="0,25,50,75,100,110,120,125")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cycle", action="store_true", help="cycle-aware map (two more columns, see basis)")
    ap.add_argument("--tta", type=int, default=1, help="causal temporal averaging over this many windows (see temporal_mean)")
    ap.add_argument("--blend", default=None, help="OOF files of a second model (cv_gbm.py), blended before the map")
    ap.add_argument("--w", type=float, default=1.0, help="with --blend: weight of the first files' mean")
    args = ap.parse_args()
    # OOF1.npz,OOF2.npz,...: the members' mean (an ensemble of one member per file and fold; the files come from
    # cv_rul.py runs on the same folds with other --seed-offset, so their rows line up: checked)
    zs = [np.load(f) for f in args.oof.split(",")]
    zb = [np.load(f) for f in args.blend.split(",")] if args.blend else []
    z = zs[0]
    for o in zs[1:] + zb:
        if not all(np.array_equal(o[k], z[k]) for k in ("dataset", "unit", "true")):
            raise SystemExit(f"{args.oof}: the files' rows do not line up (other folds or data)")
    d, u, t, w = z["dataset"], z["unit"], z["true"].astype(float), z["weight"]
    p = np.mean([o["pred"].astype(float) for o in zs], axis=0)
    if zb:
        p = args.w * p + (1 - args.w) * np.mean([o["pred"].astype(float) for o in zb], axis=0)
    if args.tta > 1:
        p = temporal_mean(np.char.add(d.astype(str), u.astype(str)), z["cycle"].astype(float), p, args.tta)
    c = z["cycle"].astype(float) if args.cycle else None
    csel = (lambda m: None) if c is None else (lambda m: c[m])  # noqa: E731
    knots = [float(k) for k in args.knots.split(",")]
    tgt = np.isin(d, TARGETS)
    # Cross-fitted: fold of a unit = its position in a seeded shuffle of the units (folds of cv_rul are
    # per data set; any unit-level partition works here as long as a unit's cuts stay together).
    keys = np.char.add(d.astype(str), u.astype(str))
    uk = np.unique(keys)
    rng = np.random.default_rng(7)
    fold_of = dict(zip(uk, rng.permutation(len(uk)) % args.folds))
    f = np.array([fold_of[k] for k in keys])
    pc = p.copy()
    for k in range(args.folds):
        tr, te = tgt & (f != k), f == k
        coef = fit(p[tr], t[tr], w[tr], knots, csel(tr))
        pc[te] = apply(p[te], knots, coef, csel(te))
    out = {"knots": knots}
    for name, q in (("raw", p), ("calibrated_crossfit", pc)):
        out[name] = {ds: rmse_by_unit(d[d == ds], u[d == ds], t[d == ds], q[d == ds]) for ds in np.unique(d)}
        out[name]["score"] = float(np.sqrt(np.mean([out[name][x] ** 2 for x in TARGETS])))
    # Uncertainty for the manifest: cross-fitted residuals of every OOF window (all four sets), by predicted band.
    sig, bias = residual_bands(pc, t)
    out["residuals_crossfit"] = {"bias": bias, "band_upper": UNCERTAINTY_BANDS[:-1], "sigma": sig}
    coef = fit(p[tgt], t[tgt], w[tgt], knots, csel(tgt))
    out["coef"] = coef.tolist()
    grid = np.array([0, 25, 50, 75, 100, 110, 120, 125, 130, 140, 150], dtype=float)
    if c is None:
        out["map"] = {f"{g:.0f}": round(float(v), 2) for g, v in zip(grid, apply(grid, knots, coef))}
    else:
        out["map"] = {f"cycle {cy:.0f}": {f"{g:.0f}": round(float(v), 2) for g, v in
                                         zip(grid, apply(grid, knots, coef, np.full_like(grid, cy)))}
                      for cy in (50, 150, 250)}
    print(json.dumps(out, indent=1))
    if args.out:
        # the output of a clearly healthy window (at cycle 100 for a cycle-aware map)
        top = float(apply(np.array([150.0]), knots, coef, None if c is None else np.array([100.0]))[0])
        json.dump({"knots": knots, "coef": coef.tolist(), "top": top, "source": args.oof, "cycle": bool(args.cycle),
                   **({"blend": args.blend, "w": args.w} if zb else {}),
                   "cv_raw": out["raw"], "cv_calibrated_crossfit": out["calibrated_crossfit"],
                   "residuals_crossfit": out["residuals_crossfit"]},
                  open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
