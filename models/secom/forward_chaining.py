#!/usr/bin/python3
"""Honest model selection for the SECOM quality model: every choice made on forward-chaining folds inside the
training part (earliest 60 % of the development runs), the later 40 % scored once per selected setting.

    /usr/bin/python3 models/secom/forward_chaining.py [DATA_DIR]    # default ../shared/data/secom

Part 1 (the shipped design: frozen median/z-score, top-k univariate-AUC columns selected inside the fold, balanced
L2 logistic regression, optional missing-value indicators, online SGD steps as OnlineLogisticModel takes them).
Part 2 (label-free drift adaptation: each column standardised by an exponentially weighted mean/variance of the
runs before it, optional |z| features). Deterministic (lbfgs, no sampling). Results: models/secom/MODEL_CARD.md.
"""
import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/secom"


def part1():
    import numpy as np, pandas as pd, sys, itertools
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    X = pd.read_csv(DATA + "/secom_dev.data", sep=r"\s+", header=None, na_values=["NaN"]).values
    y = (pd.read_csv(DATA + "/secom_dev_labels.data", sep=" ", header=None, quotechar='"')[0] == 1).values.astype(float)

    def fit(Xtr, ytr, k, C, missind):
        miss = np.isnan(Xtr).mean(axis=0)
        spread = np.array([np.nanstd(c) if (~np.isnan(c)).any() else 0.0 for c in Xtr.T])
        usable = np.where((miss < 0.5) & (spread > 1e-9))[0]
        med = np.nanmedian(Xtr[:, usable], axis=0)
        def prep(Xa):
            A = Xa[:, usable].copy(); m = np.isnan(A); A[m] = np.take(med, np.where(m)[1]); return A, m
        A, m = prep(Xtr)
        mu = A.mean(0); sd = A.std(0) + 1e-9
        Z = np.clip((A - mu) / sd, -5, 5)
        feats = [Z]
        if missind:
            feats.append(m.astype(float))
        F = np.hstack(feats)
        aucs = np.array([roc_auc_score(ytr, F[:, j]) if F[:, j].std() > 0 else 0.5 for j in range(F.shape[1])])
        top = np.argsort(-np.abs(aucs - 0.5), kind="stable")[:k]
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(F[:, top], ytr)
        def transform(Xa):
            A, m = prep(Xa); Z = np.clip((A - mu) / sd, -5, 5)
            F = np.hstack([Z] + ([m.astype(float)] if missind else [])); return F[:, top]
        return clf, transform, ytr.mean()

    def stream(clf, transform, rate, Xte, yte, lr, l2, delay, bias_shift=0.0):
        w = clf.coef_[0].copy(); b = clf.intercept_[0] + bias_shift
        F = transform(Xte); p = np.zeros(len(yte))
        wf, wp = 0.5 / rate, 0.5 / (1 - rate)
        for t in range(len(yte)):
            p[t] = 1 / (1 + np.exp(-(b + F[t] @ w)))
            s = t - delay
            if s >= 0 and lr > 0:
                ps = 1 / (1 + np.exp(-(b + F[s] @ w)))
                g = (ps - yte[s]) * (wf if yte[s] == 1 else wp)
                w -= lr * (g * F[s] + l2 * w); b -= lr * g
        return p

    def bacc(p, yt, thr=0.5):
        pred = p >= thr
        tpr = (pred & (yt == 1)).sum() / max(1, (yt == 1).sum()); tnr = (~pred & (yt == 0)).sum() / max(1, (yt == 0).sum())
        return (tpr + tnr) / 2

    n = len(y)
    # forward-chaining folds inside the first 60 %: train on [0, a), test on [a, b)
    cut = int(n * 0.6)
    folds = [(int(cut * 0.5), int(cut * 0.75)), (int(cut * 0.75), cut)]
    res = []
    for k, C, missind, lr in itertools.product([10, 20, 40, 80], [0.01, 0.1, 1.0], [False, True], [0.0, 0.002, 0.01]):
        aucs = []; 
        for a, bnd in folds:
            clf, tr, rate = fit(X[:a], y[:a], k, C, missind)
            p = stream(clf, tr, rate, X[a:bnd], y[a:bnd], lr, 0.01, 0)
            aucs.append(roc_auc_score(y[a:bnd], p))
        res.append((np.mean(aucs), k, C, missind, lr, aucs))
    res.sort(key=lambda r: -r[0])
    for r in res[:12]: print("inner %.3f k=%d C=%g miss=%s lr=%g %s" % (r[0], r[1], r[2], r[3], r[4], np.round(r[5], 3)))
    # report the holdout for the top few
    for r in res[:5]:
        _, k, C, missind, lr, _ = r
        clf, tr, rate = fit(X[:cut], y[:cut], k, C, missind)
        for d in (0, 10):
            p = stream(clf, tr, rate, X[cut:], y[cut:], lr, 0.01, d)
            print("holdout k=%d C=%g miss=%s lr=%g delay=%d auc %.3f bacc %.3f" % (k, C, missind, lr, d, roc_auc_score(y[cut:], p), bacc(p, y[cut:])))


def part2():
    import numpy as np, pandas as pd, itertools
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    X = pd.read_csv(DATA + "/secom_dev.data", sep=r"\s+", header=None, na_values=["NaN"]).values
    y = (pd.read_csv(DATA + "/secom_dev_labels.data", sep=" ", header=None, quotechar='"')[0] == 1).values.astype(float)
    n=len(y); cut=int(n*0.6)

    def prep_all(X, usable, med, alpha, mu0, sd0):
        # Online (label-free) standardisation: EW mean/var per column, updated AFTER each run is scored.
        A = X[:, usable].copy(); m = np.isnan(A)
        Z = np.zeros_like(A); mu = mu0.copy(); var = sd0**2
        for t in range(len(A)):
            a = np.where(m[t], mu, A[t])
            Z[t] = np.clip((a - mu) / np.sqrt(var + 1e-18), -5, 5)
            if alpha > 0:
                d = a - mu; mu = mu + alpha * d; var = (1 - alpha) * (var + alpha * d * d)
        return Z

    def run(tr_end, te_start, te_end, k, C, alpha, absf, lr=0.0, delay=0):
        Xtr, ytr = X[:tr_end], y[:tr_end]
        miss = np.isnan(Xtr).mean(0)
        spread = np.array([np.nanstd(c) if (~np.isnan(c)).any() else 0.0 for c in Xtr.T])
        usable = np.where((miss < 0.5) & (spread > 1e-9))[0]
        med = np.nanmedian(Xtr[:, usable], 0)
        A = Xtr[:, usable].copy(); mm = np.isnan(A); A[mm] = np.take(med, np.where(mm)[1])
        mu0 = A[:50].mean(0); sd0 = A.std(0) + 1e-9
        # stream standardisation over the whole history (train + test) so test starts with the state at its start
        Zall = prep_all(X[:te_end], usable, med, alpha, mu0 if alpha>0 else A.mean(0), sd0)
        F = np.hstack([Zall, np.abs(Zall)]) if absf else Zall
        Ftr = F[:tr_end]; Fte = F[te_start:te_end]
        aucs = np.array([roc_auc_score(ytr, Ftr[:, j]) if Ftr[:, j].std() > 0 else 0.5 for j in range(F.shape[1])])
        top = np.argsort(-np.abs(aucs - 0.5), kind="stable")[:k]
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(Ftr[:, top], ytr)
        p = clf.predict_proba(Fte[:, top])[:, 1]
        return roc_auc_score(y[te_start:te_end], p), p

    folds = [(int(cut*0.5), int(cut*0.75)), (int(cut*0.75), cut)]
    res=[]
    for k, C, alpha, absf in itertools.product([10, 20, 40], [0.01, 0.1], [0.0, 0.01, 0.03, 0.1], [False, True]):
        a = [run(s, s, e, k, C, alpha, absf)[0] for s, e in folds]
        res.append((np.mean(a), k, C, alpha, absf, np.round(a,3)))
    res.sort(key=lambda r:-r[0])
    for r in res[:10]: print("inner %.3f k=%d C=%g alpha=%g abs=%s %s" % r)
    for r in res[:4]:
        auc,_ = run(cut, cut, n, r[1], r[2], r[3], r[4]); print("holdout k=%d C=%g alpha=%g abs=%s auc %.3f" % (r[1], r[2], r[3], r[4], auc))
    for alpha in (0.0, 0.01, 0.03, 0.1):
        print("holdout k=20 C=0.1 alpha", alpha, "auc %.3f" % run(cut, cut, n, 20, 0.1, alpha, False)[0])


if __name__ == "__main__":
    print("== part 1: shipped design, inner-fold selection ==")
    part1()
    print("== part 2: drift-adaptive standardisation ==")
    part2()
