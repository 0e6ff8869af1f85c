#!/usr/bin/python3
"""Base model for the line twin's quality predictor, trained on the SECOM development split.

Reproducible (no randomness besides sklearn's deterministic lbfgs; numpy seed pinned anyway):
    /usr/bin/python3 models/secom/train_base.py --data ../shared/data/secom/secom_dev.data \
        --labels ../shared/data/secom/secom_dev_labels.data --out models/secom/secom-base.json
    # time-split check: train on the earliest 60 %, the C# bench streams the rest
    /usr/bin/python3 models/secom/train_base.py ... --train-fraction 0.6 --out /tmp/secom-base-60.json

Model (format "edgetwin-online-logistic/1", documented in models/secom/MODEL_CARD.md):
  columns with < 50 % missing and non-zero spread in the training runs; missing values -> training
  median; z-score with training mean/std, clipped to +-5; the K columns with the largest univariate
  |ROC AUC - 0.5|; L2 logistic regression with balanced class weights. The C# OnlineLogisticModel
  predicts each run, then takes one SGD step on it when its label arrives (test-then-train).
"""
import argparse
import json

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

np.random.seed(20081119)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--train-fraction", type=float, default=1.0)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--c", type=float, default=0.1)
    ap.add_argument("--learning-rate", type=float, default=0.002)
    ap.add_argument("--l2", type=float, default=0.01)
    args = ap.parse_args()

    X = pd.read_csv(args.data, sep=r"\s+", header=None, na_values=["NaN"]).values
    y = (pd.read_csv(args.labels, sep=" ", header=None, quotechar='"')[0] == 1).values.astype(float)
    n = int(len(y) * args.train_fraction)
    Xtr, ytr = X[:n], y[:n]

    miss = np.isnan(Xtr).mean(axis=0)
    spread = np.array([np.nanstd(c) if (~np.isnan(c)).any() else 0.0 for c in Xtr.T])
    usable = np.where((miss < 0.5) & (spread > 1e-9))[0]
    med = np.nanmedian(Xtr[:, usable], axis=0)
    A = Xtr[:, usable].copy()
    m = np.isnan(A)
    A[m] = np.take(med, np.where(m)[1])
    mu = A.mean(axis=0)
    sd = A.std(axis=0) + 1e-9
    Z = np.clip((A - mu) / sd, -5, 5)
    aucs = np.array([roc_auc_score(ytr, Z[:, j]) for j in range(Z.shape[1])])
    top = np.argsort(-np.abs(aucs - 0.5), kind="stable")[: args.features]
    clf = LogisticRegression(C=args.c, class_weight="balanced", max_iter=5000).fit(Z[:, top], ytr)
    fail_rate = float(ytr.mean())
    model = {
        "format": "edgetwin-online-logistic/1",
        "trained_on": {"runs": int(n), "fails": int(ytr.sum()), "data": args.data.split("/")[-1]},
        "input_width": int(X.shape[1]),
        "columns": [int(usable[j]) for j in top],
        "medians": [float(med[j]) for j in top],
        "means": [float(mu[j]) for j in top],
        "stds": [float(sd[j]) for j in top],
        "clip": 5.0,
        "weights": [float(w) for w in clf.coef_[0]],
        "bias": float(clf.intercept_[0]),
        "learning_rate": args.learning_rate,
        "l2": args.l2,
        # Balanced class weights for the online steps, from the training base rate.
        "weight_fail": 0.5 / fail_rate,
        "weight_pass": 0.5 / (1 - fail_rate),
    }
    with open(args.out, "w") as f:
        json.dump(model, f, indent=1)
        f.write("\n")
    print(f"trained on {n} runs ({int(ytr.sum())} fails), {len(usable)} usable columns, kept {len(top)}: {model['columns']}")


if __name__ == "__main__":
    main()
