#!/usr/bin/python3
"""Base model for the line twin's quality predictor, trained on the SECOM development split.

Reproducible (no randomness besides sklearn's deterministic lbfgs; numpy seed pinned anyway; running it twice
gives byte-identical JSON):
    /usr/bin/python3 models/secom/train_base.py --data ../shared/data/secom/secom_dev.data \
        --labels ../shared/data/secom/secom_dev_labels.data --out models/secom/secom-base.json
    # time-split check of the selection procedure (select_v5.py: P on the earliest 60 % chose another design);
    # train on the earliest 60 %, the C# bench streams the rest
    /usr/bin/python3 models/secom/train_base.py ... --train-fraction 0.6 --alphas 0.1 --features 20 --c 0.1 \
        --learning-rate 0.003 --decision none --mix mean --eta 0 --discount 1 --out models/secom/secom-base-dev60.json
The defaults are the shipped design, chosen by select_v5.py: five members (alpha 0.01..0.2), hedge mix (eta 0.5),
top-10 columns, C 0.01, an SGD step of 0.03 per label, the equal-error decision over the last 20 fails, no stumps.

Model (format "edgetwin-online-logistic/3", documented in models/secom/MODEL_CARD.md): an ensemble of logistic
members, one per drift rate alpha. Each member standardises its columns with an exponentially weighted (EW)
mean/variance of the runs before (label-free drift adaptation, updated after each run is scored; missing value ->
the current EW mean, z clipped to +-clip); alpha = 0 freezes the training mean/std. Each member keeps the k columns
with the largest univariate |ROC AUC - 0.5| on its own standardised training runs and an L2 logistic regression
with balanced class weights, plus (format 3) gradient-boosted stumps on the member's first --stump-features columns
added to its logit times --stump-weight (static; selected by select_v3.py). The ensemble logit is the mean of the member logits. Online: one class-weighted SGD
step per member per label; a balanced decision threshold (equal error rate of the recent labelled passes and fails)
is subtracted from the logit so that the published score separates classes evenly at 0.5 (see the model card).

`OnlineQualityModel` below is the reference implementation the C# `OnlineLogisticModel` is checked against.
"""
import argparse
import json
import math

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

np.random.seed(20081119)
FORMAT = "edgetwin-online-logistic/3"
EPS = 1e-18


def load(data, labels):
    X = pd.read_csv(data, sep=r"\s+", header=None, na_values=["NaN"]).values
    y = (pd.read_csv(labels, sep=" ", header=None, quotechar='"')[0] == 1).values.astype(float)
    return X, y


def usable_columns(Xtr):
    """Columns with < 50 % missing and non-zero spread in the training runs."""
    miss = np.isnan(Xtr).mean(axis=0)
    spread = np.array([np.nanstd(c) if (~np.isnan(c)).any() else 0.0 for c in Xtr.T])
    return np.where((miss < 0.5) & (spread > 1e-9))[0]


def ew_standardise(A, mu0, var0, alpha, clip):
    """Causal EW standardisation of the rows of A (NaN = missing): z of row t uses the state after rows < t.
    Returns Z and the state after the last row. Same recurrence as OnlineQualityModel.observe."""
    Z = np.zeros_like(A)
    mu = mu0.copy()
    var = var0.copy()
    m = np.isnan(A)
    for t in range(len(A)):
        a = np.where(m[t], mu, A[t])
        Z[t] = np.clip((a - mu) / np.sqrt(var + EPS), -clip, clip)
        if alpha > 0:
            d = a - mu
            mu = mu + alpha * d
            var = (1 - alpha) * (var + alpha * d * d)
    return Z, mu, var


def fit_stumps(Z, ytr, n_features, n_stumps, rate, weight):
    """Gradient-boosted stumps (depth-1 trees, scikit-learn 1.2, balanced sample weights, random_state 0) on the
    member's first n_features standardised columns. Returns the JSON dict: leaf values already times the rate."""
    from sklearn.ensemble import GradientBoostingClassifier
    F = Z[:, :n_features]
    sw = np.where(ytr == 1, 0.5 / ytr.mean(), 0.5 / (1 - ytr.mean()))
    gb = GradientBoostingClassifier(max_depth=1, n_estimators=n_stumps, learning_rate=rate, random_state=0).fit(F, ytr, sample_weight=sw)
    st = {"weight": float(weight), "init": float(gb._raw_predict_init(F[:1])[0, 0]), "feature": [], "threshold": [], "left": [], "right": []}
    for est in gb.estimators_[:, 0]:
        t = est.tree_
        if t.node_count == 1:  # no split: a constant stump (both leaves equal)
            st["feature"].append(0); st["threshold"].append(0.0)
            st["left"].append(float(rate * t.value[0][0][0])); st["right"].append(float(rate * t.value[0][0][0]))
            continue
        st["feature"].append(int(t.feature[0]))
        st["threshold"].append(float(t.threshold[0]))
        st["left"].append(float(rate * t.value[1][0][0]))
        st["right"].append(float(rate * t.value[2][0][0]))
    # The reference compares float64 z <= threshold; scikit-learn compares float32(z). Report the difference.
    ours = np.array([stump_sum(st, z) for z in F])
    diff = float(np.max(np.abs(ours - gb.decision_function(F))))
    if diff > 1e-6:
        print(f"note: stump sums differ from scikit-learn's float32 evaluation by up to {diff:.3g} on the training runs")
    return st


def stump_sum(st, z):
    """init + sum of the stump leaves for the standardised features z (sequential, as C# sums them)."""
    s = st["init"]
    for f, th, lv, rv in zip(st["feature"], st["threshold"], st["left"], st["right"]):
        s += lv if z[f] <= th else rv
    return s


def train_member(X, y, n, alpha, k, C, clip=5.0, stumps=None):
    """Fits one member on runs [0, n); returns its JSON dict (state = EW state after run n - 1).
    stumps = (n_features, n_stumps, rate, weight) adds boosted stumps on the member's first n_features columns."""
    Xtr, ytr = X[:n], y[:n]
    us = usable_columns(Xtr)
    A = Xtr[:, us]
    med = np.nanmedian(A, axis=0)
    if alpha > 0:
        # Start the EW mean at the first runs' mean so the early z-scores are not all drift.
        mu0 = np.nanmean(A[:50], axis=0)
        mu0 = np.where(np.isnan(mu0), med, mu0)
        var0 = np.nanvar(A, axis=0)
        Z, mu, var = ew_standardise(A, mu0, var0, alpha, clip)
    else:
        F = np.where(np.isnan(A), med, A)
        mu = F.mean(axis=0)
        var = F.var(axis=0)
        Z, _, _ = ew_standardise(A, mu, var, 0.0, clip)
    aucs = np.array([roc_auc_score(ytr, Z[:, j]) if Z[:, j].std() > 0 else 0.5 for j in range(Z.shape[1])])
    top = np.argsort(-np.abs(aucs - 0.5), kind="stable")[:k]
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(Z[:, top], ytr)
    out = {
        "alpha": float(alpha),
        "columns": [int(us[j]) for j in top],
        "mean": [float(mu[j]) for j in top],
        "var": [float(var[j]) for j in top],
        "weights": [float(w) for w in clf.coef_[0]],
        "bias": float(clf.intercept_[0]),
    }
    if stumps is not None and stumps[1] > 0:
        out["stumps"] = fit_stumps(Z[:, top], ytr, *stumps)
    return out


def train(X, y, n, alphas, k, C, lr, l2=0.01, clip=5.0, decision=None, mix=None, stumps=None):
    ytr = y[:n]
    fail_rate = float(ytr.mean())
    return {
        "format": FORMAT,
        "trained_on": {"runs": int(n), "fails": int(ytr.sum())},
        "input_width": int(X.shape[1]),
        "clip": clip,
        "learning_rate": lr,
        "l2": l2,
        # Balanced class weights for the online steps, from the training base rate.
        "weight_fail": 0.5 / fail_rate,
        "weight_pass": 0.5 / (1 - fail_rate),
        "members": [train_member(X, y, n, a, k, C, clip, stumps) for a in alphas],
        "mix": mix if mix is not None else {"mode": "mean", "eta": 0.0, "discount": 1.0},
        "decision": decision if decision is not None else default_decision(fail_rate),
    }


def default_decision(fail_rate):
    return {"mode": "eer", "window_pass": 200, "window_fail": 20, "min_fails": 5, "prior": fail_rate, "prior_alpha": 0.01}


class OnlineQualityModel:
    """Reference of the C# OnlineLogisticModel (same arithmetic, same order)."""

    def __init__(self, m):
        self.m = m
        self.clip = m["clip"]
        self.mem = []
        for d in m["members"]:
            self.mem.append({"alpha": d["alpha"], "cols": np.array(d["columns"]), "mu": np.array(d["mean"], float),
                             "var": np.array(d["var"], float), "w": np.array(d["weights"], float), "b": float(d["bias"]),
                             "st": d.get("stumps")})
        mix = m["mix"]
        self.mix_mode, self.eta, self.discount = mix["mode"], mix["eta"], mix["discount"]
        self.loss = np.zeros(len(self.mem))
        self.pi = np.full(len(self.mem), 1.0 / len(self.mem))
        dec = m["decision"]
        self.mode = dec["mode"]
        self.wp, self.wf, self.min_fails = dec["window_pass"], dec["window_fail"], dec["min_fails"]
        self.passes, self.fails = [], []
        self.offset = 0.0
        self.prior = dec["prior"]
        self.prior_alpha = dec["prior_alpha"]

    def _z(self, me, x):
        a = x[me["cols"]]
        a = np.where(np.isnan(a), me["mu"], a)
        return np.clip((a - me["mu"]) / np.sqrt(me["var"] + EPS), -self.clip, self.clip), a

    def member_logits(self, x):
        out = []
        for me in self.mem:
            out.append(self._member_logit(me, x))
        return out

    def _member_logit(self, me, x):
        z, _ = self._z(me, x)
        L = me["b"] + float(np.dot(me["w"], z))
        if me["st"] is not None:
            L += me["st"]["weight"] * stump_sum(me["st"], z)
        return L

    def logit(self, x):
        s = 0.0
        for pi, lm in zip(self.pi, self.member_logits(x)):
            s += pi * lm
        return s

    def observe(self, x):
        """Score the run (balanced score: decision at 0.5), then update the label-free drift state."""
        L = self.logit(x)
        for me in self.mem:
            al = me["alpha"]
            if al > 0:
                _, a = self._z(me, x)
                d = a - me["mu"]
                me["mu"] = me["mu"] + al * d
                me["var"] = (1 - al) * (me["var"] + al * d * d)
        return 1.0 / (1.0 + math.exp(-(L - self.offset)))

    def calibrated(self, score):
        """Saerens-style prior correction of a balanced score with the tracked fail rate."""
        s = min(max(score, 1e-300), 1 - 1e-16)
        return 1.0 / (1.0 + math.exp(-(math.log(s / (1 - s)) + math.log(self.prior / (1 - self.prior)))))

    def learn(self, x, failed):
        L = self.logit(x)
        lr, l2 = self.m["learning_rate"], self.m["l2"]
        wt = self.m["weight_fail"] if failed else self.m["weight_pass"]
        if self.mix_mode == "hedge":
            # Exponentially weighted experts: discounted class-weighted log loss of each member on the labels.
            for i, lm in enumerate(self.member_logits(x)):
                # log loss of a logistic output, written stably: log(1 + exp(-+lm))
                u = -lm if failed else lm
                self.loss[i] = self.discount * self.loss[i] + wt * (max(u, 0.0) + math.log(1 + math.exp(-abs(u))))
            lo = float(self.loss.min())
            e = np.array([math.exp(-self.eta * (v - lo)) for v in self.loss])
            self.pi = e / e.sum()
        if lr > 0:
            for me in self.mem:
                z, _ = self._z(me, x)
                p = 1.0 / (1.0 + math.exp(-self._member_logit(me, x)))
                g = (p - (1.0 if failed else 0.0)) * wt
                me["w"] = me["w"] - lr * (g * z + l2 * me["w"])
                me["b"] = me["b"] - lr * g
        self.prior = (1 - self.prior_alpha) * self.prior + self.prior_alpha * (1.0 if failed else 0.0)
        if self.mode == "none":
            return
        buf, cap = (self.fails, self.wf) if failed else (self.passes, self.wp)
        buf.append(L)
        if len(buf) > cap:
            buf.pop(0)
        if len(self.fails) >= self.min_fails and len(self.passes) >= self.min_fails:
            self.offset = eer_threshold(self.passes, self.fails)

    def state(self):
        return self.offset, self.prior


def eer_threshold(passes, fails):
    """Threshold where the miss rate of fails equals the false-alarm rate of passes (the equal error rate),
    searched over the midpoints between the sorted pooled logits: the candidate with the smallest
    |FNR - FPR|, ties broken by the smaller threshold. Same as C# BalancedThreshold."""
    v = sorted(passes + fails)
    P = sorted(passes)
    Fs = sorted(fails)
    best, best_gap = 0.0, math.inf
    nP, nF = len(P), len(Fs)
    ip = jf = 0
    for i in range(len(v) + 1):
        if i == 0:
            th = v[0] - 1.0
        elif i == len(v):
            th = v[-1] + 1.0
        else:
            if v[i] == v[i - 1]:
                continue
            th = 0.5 * (v[i - 1] + v[i])
        while jf < nF and Fs[jf] < th:
            jf += 1
        while ip < nP and P[ip] < th:
            ip += 1
        fnr = jf / nF
        fpr = (nP - ip) / nP
        gap = abs(fnr - fpr)
        if gap < best_gap - 1e-12:
            best, best_gap = th, gap
    return best


def stream(model, X, y, delay):
    """Predict run t, then learn run t - delay (as QualityStream.Run)."""
    m = OnlineQualityModel(model)
    p = np.zeros(len(y))
    for t in range(len(y)):
        p[t] = m.observe(X[t])
        s = t - delay
        if s >= 0:
            m.learn(X[s], bool(y[s] == 1))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--train-fraction", type=float, default=1.0)
    ap.add_argument("--alphas", default="0.01,0.02,0.05,0.1,0.2")
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--c", type=float, default=0.01)
    ap.add_argument("--learning-rate", type=float, default=0.03)
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--decision", default="eer", choices=["eer", "none"])
    ap.add_argument("--mix", default="hedge", choices=["mean", "hedge"])
    ap.add_argument("--eta", type=float, default=0.5)
    ap.add_argument("--discount", type=float, default=0.99)
    ap.add_argument("--window-fail", type=int, default=20)
    ap.add_argument("--min-fails", type=int, default=5)
    ap.add_argument("--stumps", type=int, default=0, help="boosted stumps per member (0 = logistic only)")
    ap.add_argument("--stump-features", type=int, default=5)
    ap.add_argument("--stump-rate", type=float, default=0.05)
    ap.add_argument("--stump-weight", type=float, default=0.25)
    args = ap.parse_args()

    X, y = load(args.data, args.labels)
    n = int(len(y) * args.train_fraction)
    alphas = [float(a) for a in args.alphas.split(",")]
    dec = default_decision(float(y[:n].mean()))
    dec["mode"] = args.decision
    dec["window_fail"] = args.window_fail
    dec["min_fails"] = args.min_fails
    mix = {"mode": args.mix, "eta": args.eta, "discount": args.discount}
    stumps = (args.stump_features, args.stumps, args.stump_rate, args.stump_weight)
    model = train(X, y, n, alphas, args.features, args.c, args.learning_rate, args.l2, decision=dec, mix=mix, stumps=stumps)
    model["trained_on"]["data"] = args.data.split("/")[-1]
    with open(args.out, "w") as f:
        json.dump(model, f, indent=1)
        f.write("\n")
    print(f"trained on {n} runs ({int(y[:n].sum())} fails), {len(alphas)} members x {args.features} columns")


if __name__ == "__main__":
    main()
