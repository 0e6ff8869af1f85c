#!/usr/bin/python3
"""Gradient-boosting RUL member on causal window features: 5-fold CV, and a fit on all non-held-out units.

Same folds, same expected test-cut scoring and the same out-of-fold layout as cv_rul.py (cmapss_common.CvData /
CvStore), so calibrate.py can blend its OOF file with the CNN members' (rule: models/rul/selection-1.4.0.md,
addendum 5). Features: cmapss_common.gbm_features of the same [50,15] window the CNN sees (linear in the window
plus min/max, so the ONNX graph computes them from the window and C# needs no change; --features x adds EWMs,
last - mean50 and short-window variances, addendum 6). Target as the recipe of
1.3.0: the uncapped RUL on the windows a test cut can end on (true RUL <= 150), all four data sets.

--fit-all PATH: after the CV (or instead, with --folds 0) one model on every non-held-out unit, pickled to PATH;
--heldout DIR: that model scored on DIR/test_FDxxx.txt + RUL_FDxxx.txt (make_heldout.py), a protocol check only.

Usage: nice /usr/bin/python3 models/rul/cv_gbm.py --oof /tmp/gbm.npz
       nice /usr/bin/python3 models/rul/cv_gbm.py --folds 0 --fit-all /tmp/gbm.pkl [--heldout models/rul/heldout]
       /usr/bin/python3 models/rul/cv_gbm.py --folds 0 --load /tmp/gbm.pkl --heldout models/rul/heldout
"""
import argparse
import json
import os
import pickle
import sys
import time

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cmapss_common  # noqa: E402
from cmapss_common import DATASETS, SEED, features, gbm_features, last_window, load, phm08_score, units  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def make_gbm(args):
    # Config fixed by the rule before any run (selection-1.4.0.md, addendum 5).
    return GradientBoostingRegressor(n_estimators=args.trees, learning_rate=args.learning_rate, max_depth=args.depth,
                                     min_samples_leaf=args.min_leaf, subsample=args.subsample,
                                     max_features=args.max_features, random_state=SEED)


def fit(cv, keys, args):
    x, y = cv.train_xy(keys, "cut", 150.0)
    t = time.time()
    model = make_gbm(args).fit(gbm_features(x, args.features), y)
    print(f"  fit on {len(y)} windows x {model.n_features_in_} features: {time.time() - t:.0f}s", flush=True)
    return model


def predict(model, x, kind):
    return np.clip(model.predict(gbm_features(x, kind)), 0, None).astype(np.float32)


def heldout(model, cv, heldout_dir, kind):
    """RMSE (uncapped and truth capped at 125) and PHM08 on the held-out test files, as bench cmapss scores them."""
    out = {}
    for d in DATASETS:
        test = units(load(os.path.join(heldout_dir, f"test_{d}.txt")))
        truth = np.loadtxt(os.path.join(heldout_dir, f"RUL_{d}.txt"))
        x = np.stack([last_window(features(test[u], cv.centroids, cv.mean, cv.std)) for u in sorted(test)])
        p = predict(model, x, kind).astype(np.float64)
        out[d] = {"cuts": len(truth), "rmse": float(np.sqrt(np.mean((p - truth) ** 2))),
                  "rmse_capped125": float(np.sqrt(np.mean((p - np.minimum(truth, 125)) ** 2))),
                  "phm08": phm08_score(p, truth)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "cmapss"))
    ap.add_argument("--folds", type=int, default=5, help="0: no CV, only --fit-all")
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--min-leaf", type=int, default=50)
    ap.add_argument("--subsample", type=float, default=0.5)
    ap.add_argument("--max-features", type=float, default=0.3)
    ap.add_argument("--features", default="base", choices=["base", "x", "xc"],
                    help="cmapss_common.gbm_features kind: base (1.4.0's 150), x (225, addendum 6) or xc (x with "
                         "centred variances, addendum 7)")
    ap.add_argument("--oof", default=None, help="write out-of-fold predictions here (.npz, the layout of cv_rul.py)")
    ap.add_argument("--fit-all", default=None, help="fit on all non-held-out units and pickle the model here")
    ap.add_argument("--load", default=None, help="instead of --fit-all: the model pickled by an earlier --fit-all")
    ap.add_argument("--heldout", default=None, help="with --fit-all or --load: score on this directory's test files")
    ap.add_argument("--include-heldout", action="store_true",
                    help="--fit-all on every training unit, the held-out ones too (addendum 8: refit of a fixed recipe; "
                         "--heldout figures are then in-sample)")
    ap.add_argument("--unit-fraction", type=float, default=1.0,
                    help="--fit-all on a seeded share of the non-held-out units per data set (learning-curve check)")
    ap.add_argument("--name", default="gbm")
    args = ap.parse_args()
    t0 = time.time()
    cv = cmapss_common.CvData(args.data, args.window, max(args.folds, 1))
    print(f"prep {time.time() - t0:.0f}s", flush=True)
    store = cmapss_common.CvStore()
    for k in range(args.folds):
        model = fit(cv, [key for d in DATASETS for key in cv.train_keys(d, k)], args)
        msg = []
        for d in DATASETS:
            fold_sq = [store.add(cv, d, u, predict(model, cv.win[(d, u)][cv.test_cuts(d, u)], args.features)) for u in cv.folds[d][k]]
            msg.append(f"{d} {np.sqrt(np.mean(fold_sq)):.2f}")
        print(f"fold {k}: " + " ".join(msg) + f" {time.time() - t0:.0f}s", flush=True)
    if args.folds:
        store.report(args.name, args.oof, args.folds, args)
    model = None
    if args.fit_all:
        keys = [(d, u) for d in DATASETS for u in cv.train_ids[d]]
        if args.unit_fraction < 1:
            rng = np.random.default_rng(SEED + 8)
            keys = []
            for d in DATASETS:
                ids = list(cv.train_ids[d])
                keep = rng.permutation(len(ids))[: int(round(args.unit_fraction * len(ids)))]
                keys += [(d, ids[i]) for i in sorted(keep)]
        if args.include_heldout:
            keys += cv.add_heldout_windows()
        print(f"fit-all on {len(keys)} units", flush=True)
        model = fit(cv, keys, args)
        n_nodes = sum(e[0].tree_.node_count for e in model.estimators_)
        pickle.dump({"model": model, "window": args.window, "args": vars(args)}, open(args.fit_all, "wb"))
        print(f"fit-all: {len(model.estimators_)} trees, {n_nodes} nodes -> {args.fit_all}", flush=True)
    elif args.load:
        saved = pickle.load(open(args.load, "rb"))
        model = saved["model"]
        args.features = saved["args"].get("features", "base")
    if model is not None and args.heldout:
        print("HELDOUT " + json.dumps({"name": args.name, "heldout": heldout(model, cv, args.heldout, args.features)}), flush=True)


if __name__ == "__main__":
    main()
