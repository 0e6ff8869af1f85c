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
