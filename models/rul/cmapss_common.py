"""Shared C-MAPSS helpers: loading, the unit split, condition-normalised windows.

The C# side (src/EdgeTwin.Twin/Models/Rul/CmapssPreprocessor.cs) implements the same
preprocessing; rul-fixture.json written by train_rul.py pins the two together.
"""
import numpy as np

SEED = 20260
WINDOW = 30
RUL_CAP = 125.0
CYCLE_SCALE = 200.0
# The 14 sensors that vary with degradation (1-based sensor numbers, as in the readme).
SENSORS = [2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21]
DATASETS = ["FD001", "FD002", "FD003", "FD004"]
VAL_FRACTION = 0.2


def load(path):
    """Rows of: unit, cycle, setting1..3, sensor1..21 (whitespace separated)."""
    a = np.loadtxt(path, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 26:
        raise ValueError(f"{path}: expected 26 columns, got {a.shape}")
    return a[:, :26]


def units(a):
    """{unit id: rows sorted by cycle}."""
    out = {}
    for u in np.unique(a[:, 0]).astype(int):
        r = a[a[:, 0] == u]
        out[u] = r[np.argsort(r[:, 1])]
    return out


def split_units(dataset, unit_ids):
    """Deterministic 80/20 split of training units per dataset."""
    rng = np.random.default_rng(SEED + DATASETS.index(dataset))
    ids = np.array(sorted(unit_ids))
    rng.shuffle(ids)
    n_val = int(round(len(ids) * VAL_FRACTION))
    return sorted(ids[n_val:].tolist()), sorted(ids[:n_val].tolist())


def condition_of(settings, centroids):
    """Nearest operating-condition centroid (Euclidean on the scaled settings)."""
    d = (((settings[:, None, :] - centroids[None, :, :]) / SETTING_SCALE) ** 2).sum(axis=2)
    return d.argmin(axis=1)


# Settings scaled so altitude (setting 1, 0..42), Mach (0..0.84) and TRA (60/100) weigh alike.
SETTING_SCALE = np.array([42.0, 0.84, 100.0])


def features(rows, centroids, mean, std, gate_condition=None):
    """Per-row features: z-scored sensors per operating condition + cycle/CYCLE_SCALE.

    With gate_condition k a last column is 1 where the row's operating condition is k, else 0
    (manifest feature name "inCondition<k>"): the gated model (1.4.0) uses its single-condition
    specialist only when every row of the window is in the sea-level condition.
    """
    cond = condition_of(rows[:, 2:5], centroids)
    sens = rows[:, [4 + s for s in SENSORS]]
    z = (sens - mean[cond]) / std[cond]
    cyc = rows[:, 1:2] / CYCLE_SCALE
    cols = [z, cyc]
    if gate_condition is not None:
        cols.append((cond == gate_condition).astype(np.float64)[:, None])
    return np.concatenate(cols, axis=1).astype(np.float32)


def last_window(feat):
    """The last WINDOW rows; shorter histories are padded by repeating the first row."""
    if len(feat) >= WINDOW:
        return feat[-WINDOW:]
    pad = np.repeat(feat[:1], WINDOW - len(feat), axis=0)
    return np.concatenate([pad, feat], axis=0)


def truncate_heldout(dataset, val_units, n_cuts=5, max_rul=150):
    """Test-format trajectories from held-out units: each unit cut n_cuts times (seeded).

    Truth RUL drawn uniformly from [1, min(max_rul, len-1)], like NASA's test files whose
    truth is at most ~145-195 cycles. Returns list of (rows renumbered as a new unit, true RUL).
    """
    rng = np.random.default_rng(SEED * 7 + DATASETS.index(dataset))
    out = []
    new_id = 1
    for u in sorted(val_units):
        rows = val_units[u]
        n = len(rows)
        for _ in range(n_cuts):
            rul = int(rng.integers(1, min(max_rul, n - 1) + 1))
            keep = rows[: n - rul].copy()
            keep[:, 0] = new_id
            out.append((keep, rul))
            new_id += 1
    return out


def fit_conditions(all_rows):
    """The 6 operating-condition centroids: k-means on the scaled settings of the six-condition sets' rows."""
    from sklearn.cluster import KMeans
    s = all_rows[:, 2:5] / SETTING_SCALE
    km = KMeans(n_clusters=6, n_init=10, random_state=SEED).fit(s)
    c = km.cluster_centers_ * SETTING_SCALE
    c = c[np.argsort(c[:, 0])]
    return np.round(c, 4)


def fit_normalisation(data, train_ids):
    """Centroids and per-condition sensor mean/std from the training units of all four sets (train_rul, cv_rul)."""
    train_rows = np.concatenate([data[d][u] for d in DATASETS for u in train_ids[d]])
    multi = np.concatenate([data[d][u] for d in ("FD002", "FD004") for u in train_ids[d]])
    centroids = fit_conditions(multi)
    cond = condition_of(train_rows[:, 2:5], centroids)
    sens = train_rows[:, [4 + s for s in SENSORS]]
    mean = np.stack([sens[cond == k].mean(axis=0) for k in range(len(centroids))])
    std = np.stack([np.maximum(sens[cond == k].std(axis=0), 1e-6) for k in range(len(centroids))])
    return centroids, mean, std


UNCERTAINTY_BANDS = [25, 50, 75, 100, 1e9]


def residual_bands(pred, truth):
    """Uncertainty for the manifest: the RMS residual per predicted-RUL band (<=25, <=50, <=75, <=100, >100; 20 cycles
    where a band holds 10 windows or fewer) and the mean bias."""
    sigma, lo = [], -1
    for hi in UNCERTAINTY_BANDS:
        m = (pred > lo) & (pred <= hi)
        sigma.append(float(np.sqrt(np.mean((pred[m] - truth[m]) ** 2))) if m.sum() > 10 else 20.0)
        lo = hi
    return sigma, float(np.mean(pred - truth))


# ---- cross-validation over the non-held-out units (cv_rul.py, cv_gbm.py): one set of folds and one scoring ----
MAX_TEST_RUL = 150


class CvData:
    """Every prefix window of every non-held-out unit (once), its true RUL and cycle, and the seeded folds.

    The held-out units (split_units(...)[1]) are dropped on loading and never seen here.
    """

    def __init__(self, data_dir, window, n_folds):
        global WINDOW
        WINDOW = window
        self.data = {d: units(load(f"{data_dir}/train_{d}.txt")) for d in DATASETS}
        self.train_ids = {d: split_units(d, self.data[d].keys())[0] for d in DATASETS}
        self.centroids, self.mean, self.std = fit_normalisation(self.data, self.train_ids)
        self.win, self.true, self.cyc = {}, {}, {}
        for d in DATASETS:
            for u in self.train_ids[d]:
                self._add_windows(d, u)
        self.n_folds = n_folds
        self.heldout_ids = {d: split_units(d, self.data[d].keys())[1] for d in DATASETS}
        self.folds = {}
        for d in DATASETS:
            rng = np.random.default_rng(SEED * 11 + DATASETS.index(d))
            ids = np.array(self.train_ids[d])
            rng.shuffle(ids)
            self.folds[d] = [sorted(ids[k::n_folds].tolist()) for k in range(n_folds)]

    def add_heldout_windows(self):
        """Adds the held-out units' windows (normalised with the non-held-out units' constants, as shipped) and returns
        their keys: only for refitting a fixed recipe on every training unit once its choice and checks are done."""
        keys = [(d, u) for d in DATASETS for u in self.heldout_ids[d]]
        for d, u in keys:
            self._add_windows(d, u)
        return keys

    def _add_windows(self, d, u):
        """Every prefix window of unit u of data set d, its true RUL and cycle number."""
        f = features(self.data[d][u], self.centroids, self.mean, self.std)
        n = len(f)
        self.win[(d, u)] = np.stack([last_window(f[: t + 1]) for t in range(n)]).astype(np.float32)
        self.true[(d, u)] = (n - 1 - np.arange(n)).astype(np.float32)
        self.cyc[(d, u)] = np.arange(1, n + 1, dtype=np.float32)

    def train_keys(self, d, k):
        """The units of data set d outside fold k."""
        return [(d, u) for j in range(self.n_folds) if j != k for u in self.folds[d][j]]

    def train_xy(self, keys, target, cap):
        """capped: every window, target min(RUL, cap); cut: the windows a test cut can end on (true RUL <= 150),
        target the uncapped RUL."""
        xs, ys = [], []
        for key in keys:
            x, t = self.win[key], self.true[key]
            if target == "cut":
                m = t <= MAX_TEST_RUL
                xs.append(x[m])
                ys.append(t[m])
            else:
                xs.append(x)
                ys.append(np.minimum(t, cap))
        return np.concatenate(xs), np.concatenate(ys)

    def test_cuts(self, d, u):
        """Mask of the windows a test cut of unit u could end on (true RUL 1..min(150, length-1))."""
        t = self.true[(d, u)]
        return (t >= 1) & (t <= min(MAX_TEST_RUL, len(t) - 1))


class CvStore:
    """Out-of-fold predictions and the expected test-cut error: every cut position of a unit equally likely and
    each unit weighing the same (5 cuts per unit in the test files)."""

    def __init__(self):
        self.oof = {"dataset": [], "unit": [], "true": [], "pred": [], "cycle": [], "weight": []}
        self.sq = {d: [] for d in DATASETS}

    def add(self, cv, d, u, p):
        """p: predictions on unit u's test-cut windows (cv.test_cuts); returns the unit's mean squared error."""
        m = cv.test_cuts(d, u)
        t = cv.true[(d, u)][m]
        e2 = float(((p - t) ** 2).mean())
        self.sq[d].append(e2)
        n = int(m.sum())
        for key, val in (("dataset", [d] * n), ("unit", [u] * n), ("true", t), ("pred", p),
                         ("cycle", cv.cyc[(d, u)][m]), ("weight", np.full(n, 1.0 / n))):
            self.oof[key].extend(list(val))
        return e2

    def report(self, name, path, folds_run, args):
        """Prints the CV RMSE per data set and the score (rms of FD001, FD003); writes the OOF file (.npz)."""
        import json
        res = {d: float(np.sqrt(np.mean(v))) for d, v in self.sq.items() if v}
        score = float(np.sqrt((res["FD001"] ** 2 + res["FD003"] ** 2) / 2))
        print("CV " + json.dumps({"name": name, "cv_rmse": res, "score": score, "folds_run": folds_run,
                                  "args": vars(args)}), flush=True)
        if path:
            np.savez(path, **{k: np.array(v) for k, v in self.oof.items()})
        return res, score


# ---- causal window features of the gradient-boosting member (cv_gbm.py; computed in the ONNX graph as well) ----
# Per column of the [W,15] window: the last value, the means of the last 5/10/20/50 rows, the least-squares slopes
# over the last 10/20/50 rows (all one MatMul with GBM_LINEAR), then the min and the max over the window.
# "x" (addendum 6) adds per column: exponentially weighted means (half-lives GBM_EWM rows, weights normalised over
# the window) and last - mean50 (more MatMul columns), and the variances over the last GBM_VARS rows as
# E[x^2] - E[x]^2 (a monotone stand-in for the std: the same to a tree); order: linear, variances, min, max.
GBM_MEANS = (5, 10, 20, 50)
GBM_SLOPES = (10, 20, 50)
GBM_EWM = (5, 15)
GBM_VARS = (10, 20)
GBM_STATS = ["last"] + [f"mean{n}" for n in GBM_MEANS] + [f"slope{n}" for n in GBM_SLOPES] + ["min", "max"]
GBM_STATS_X = (["last"] + [f"mean{n}" for n in GBM_MEANS] + [f"slope{n}" for n in GBM_SLOPES]
               + [f"ewm{h}" for h in GBM_EWM] + ["last-mean50"] + [f"var{n}" for n in GBM_VARS] + ["min", "max"])


def gbm_stats(kind):
    # "xc" (addendum 7): the features of "x" with the variances computed centred, mean of (x - mean)^2, which the
    # graph reproduces to float32 rounding (E[x^2] - E[x]^2 cancels digits: a split flipped in ONNX, addendum 6)
    return {"base": GBM_STATS, "x": GBM_STATS_X, "xc": GBM_STATS_X}[kind]


def gbm_linear(window, kind="base"):
    """[window, 8] ("x": [window, 11]) weights: window-row weights of the last value, the means, the slopes
    (and for "x" the EWMs and last - mean50), per row index."""
    cols = []
    e = np.zeros(window)
    e[-1] = 1.0
    cols.append(e)
    for n in GBM_MEANS:
        c = np.zeros(window)
        c[-n:] = 1.0 / n
        cols.append(c)
    for n in GBM_SLOPES:
        i = np.arange(n) - (n - 1) / 2.0
        c = np.zeros(window)
        c[-n:] = i / (i ** 2).sum()
        cols.append(c)
    if kind in ("x", "xc"):
        age = np.arange(window)[::-1]  # rows before the last
        for h in GBM_EWM:
            c = 0.5 ** (age / h)
            cols.append(c / c.sum())
        c = -np.full(window, 1.0 / min(50, window))
        c[: window - min(50, window)] = 0.0
        c[-1] += 1.0
        cols.append(c)
    return np.stack(cols, axis=1).astype(np.float32)


def gbm_var_means(window):
    """[window, len(GBM_VARS)]: the mean weights of the variance windows (applied to x and to x*x)."""
    cols = []
    for n in GBM_VARS:
        c = np.zeros(window)
        c[-n:] = 1.0 / n
        cols.append(c)
    return np.stack(cols, axis=1).astype(np.float32)


def centred_var(xt, n):
    """xt [N,C,W] float32 -> [N,C]: mean over the last n rows of (x - their mean)^2, in float32 as the graph does it
    (ReduceMean, Sub, Mul, ReduceMean)."""
    last = xt[:, :, -n:]
    d = last - last.mean(axis=2, keepdims=True, dtype=np.float32)
    return (d * d).mean(axis=2, dtype=np.float32)


def gbm_features(x, kind="base"):
    """x [N,W,C] float32 -> [N, C * len(gbm_stats(kind))] float32, column c's statistics together
    (feature c * len(stats) + s). The graph of export_blend.py computes the same in the same order."""
    xt = x.transpose(0, 2, 1)
    parts = [np.matmul(xt, gbm_linear(x.shape[1], kind))]  # [N,C,8 or 11]
    if kind == "x":
        vm = gbm_var_means(x.shape[1])
        m1 = np.matmul(xt, vm)
        m2 = np.matmul(xt * xt, vm)
        parts.append(m2 - m1 * m1)
    elif kind == "xc":
        parts.append(np.stack([centred_var(xt, n) for n in GBM_VARS], axis=2))
    parts += [x.min(axis=1)[:, :, None], x.max(axis=1)[:, :, None]]
    out = np.concatenate(parts, axis=2)
    return out.reshape(len(x), -1).astype(np.float32)


def phm08_score(pred, truth):
    d = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1, np.exp(d / 10.0) - 1)))


def epoch_windows(sets, gen, multi_fraction, finetune):
    """One epoch's training windows and their shuffle: every window of the single-condition sets (FD001/FD003), a
    `multi_fraction` share of the six-condition ones (none while fine-tuning). `sets` yields (dataset, x, y) in a fixed
    order; draws from `gen` in that order, then the shuffle (the random stream both training scripts have always used)."""
    import torch  # here: make_heldout.py uses this module without torch

    xs, ys = [], []
    for d, x, y in sets:
        if finetune and d not in ("FD001", "FD003"):
            continue
        frac = 1.0 if d in ("FD001", "FD003") else multi_fraction
        sel = torch.randperm(len(x), generator=gen)[: int(len(x) * frac)].numpy()
        xs.append(x[sel])
        ys.append(y[sel])
    xt, yt = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
    return xt, yt, torch.randperm(len(xt), generator=gen)


def cosine_lr(args, ep, finetune):
    """Cosine-annealed learning rate of epoch `ep` in the joint phase, or of the fine-tuning phase after it."""
    if finetune:
        return args.finetune_lr * 0.5 * (1 + np.cos(np.pi * (ep - args.epochs) / args.finetune_epochs))
    return args.lr * 0.5 * (1 + np.cos(np.pi * ep / args.epochs))
