#!/usr/bin/python3
"""Train the C-MAPSS RUL model and export it for the gateway.

Reproducible (seeds pinned, single-threaded BLAS order fixed by torch.set_num_threads).
Writes:
  models/rul-cmapss.onnx        the model (input "window" [N,30,15] float32, output "rul" [N,1])
  models/manifest.json          the "rul-cmapss" entry (sha256, shapes, normalisation, uncertainty)
  models/rul/validation.json    validation figures on held-out units
  models/rul/heldout/           test-format files built from held-out units (make_heldout.py)
  tests/EdgeTwin.Twin.Tests/Models/Fixtures/rul-fixture.json  preprocessing + output fixture
Usage: /usr/bin/python3 models/rul/train_rul.py [--data DIR] [--epochs N]
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cmapss_common import (CYCLE_SCALE, DATASETS, RUL_CAP, SEED, SENSORS, SETTING_SCALE, WINDOW,  # noqa: E402
                           condition_of, features, last_window, load, phm08_score, split_units,
                           truncate_heldout, units)

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
REPO = os.path.dirname(MODELS)
N_FEAT = len(SENSORS) + 1
VERSION = "1.0.0"


class RulCnn(nn.Module):
    """Small 1D CNN over a [N, WINDOW, N_FEAT] window; ~70k parameters."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(N_FEAT, 32, 5, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 5, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(),
            nn.Conv1d(32, 8, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * WINDOW, 64), nn.ReLU(),
                                  nn.Linear(64, 1))

    def forward(self, x):
        return self.head(self.conv(x.transpose(1, 2))) * RUL_CAP / 2.0 + RUL_CAP / 2.0


def fit_conditions(all_rows):
    from sklearn.cluster import KMeans
    s = all_rows[:, 2:5] / SETTING_SCALE
    km = KMeans(n_clusters=6, n_init=10, random_state=SEED).fit(s)
    c = km.cluster_centers_ * SETTING_SCALE
    c = c[np.argsort(c[:, 0])]
    return np.round(c, 4)


def write_card(val):
    """models/rul-cmapss.md from the validation figures (also: --card-only, from validation.json)."""
    rows = "\n".join(f"| {d} | {r['units']} | {r['rmse']:.2f} | {r['rmse_capped125']:.2f} | {r['phm08']:.0f} |"
                     for d, r in val["heldout"].items())
    sig = ", ".join(f"{s:.1f}" for s in val["uncertainty_sigma"])
    card = f"""# Model card: rul-cmapss {VERSION}

Remaining useful life (in cycles) of a turbofan engine from its last 30 cycles, trained on NASA's C-MAPSS
training files FD001-FD004. Written by `models/rul/train_rul.py` (seeds pinned); entry in `models/manifest.json`.

## Data
- `train_FD001..FD004.txt` from `shared/data/cmapss` only. NASA's test and RUL files are not used.
- Split by **unit**: per data set a seeded 20 % of the training units is held out (never trained on, never used
  for model selection); the held-out unit ids are in `models/rul/validation.json`.
- Held-out test sets (`models/rul/make_heldout.py`): each held-out unit is cut at 5 seeded random points, the true
  RUL drawn uniformly from [1, min(150, length-1)], written in NASA's test/RUL layout.

## Preprocessing (same code path in C#: `src/EdgeTwin.Twin/Models/Rul/CmapssPreprocessor.cs`, fixture-tested)
1. Operating condition: nearest of 6 centroids (k-means on FD002/FD004 training settings, each setting divided by
   42, 0.84, 100).
2. The 14 informative sensors (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21) z-scored with that condition's
   mean and std (pooled over the training units of all four data sets).
3. A 15th feature: cycle number / 200.
4. Window: the last 30 cycles; shorter histories padded at the front by repeating the first row.
5. Target: piecewise-linear RUL capped at {RUL_CAP:.0f}.

## Model
1D CNN (4 conv layers, 32 channels, then 64-unit dense), {val['params']:,} parameters, {val['onnx_bytes'] / 1024:.0f} KB ONNX
(opset 13, input `window` [N,30,15] float32, output `rul` [N,1]). Adam 1e-3, cosine schedule, {val['epochs']} epochs of
half the training windows each (CPU, 1 thread; {val['train_seconds']} s wall on a shared, heavily loaded 2-core machine).

## Validation (held-out units)
| data set | test units | RMSE (uncapped truth) | RMSE (truth capped at 125) | PHM08 score |
|---|---|---|---|---|
{rows}

Uncertainty for maintenance predictions: residuals of all held-out windows, bias {val['bias']:.2f} cycles, sigma by
predicted-RUL band (<=25, <=50, <=75, <=100, >100): {sig} cycles.

## Limits
- Output is capped at 125 cycles by construction: when the true RUL is larger the uncapped RMSE counts the
  difference as error (most of the gap between the two RMSE columns).
- FD002/FD004 (six conditions) are markedly worse than FD001/FD003; the issue's target (RMSE <= 12 on FD001 and FD003
  against NASA's RUL files, uncapped) is **not** shown here: our held-out protocol is not NASA's and the figures
  above are on 20 % of the training units.
- Trained on simulated turbofans; the normalisation is specific to C-MAPSS sensors. It is not a model of the
  gateway's machines: those need a model trained on their own data (see the issue's machine-health item).
"""
    with open(os.path.join(MODELS, "rul-cmapss.md"), "w") as f:
        f.write(card)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "cmapss"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epoch-fraction", type=float, default=0.5,
                    help="share of the training windows drawn (without replacement) per epoch")
    ap.add_argument("--card-only", action="store_true", help="rewrite the model card from validation.json")
    args = ap.parse_args()
    if args.card_only:
        write_card(json.load(open(os.path.join(HERE, "validation.json"))))
        return
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(args.threads)
    t0 = time.time()

    data = {d: units(load(os.path.join(args.data, f"train_{d}.txt"))) for d in DATASETS}
    split = {d: split_units(d, data[d].keys()) for d in DATASETS}
    train_rows = np.concatenate([data[d][u] for d in DATASETS for u in split[d][0]])
    multi = np.concatenate([data[d][u] for d in ("FD002", "FD004") for u in split[d][0]])
    centroids = fit_conditions(multi)
    cond = condition_of(train_rows[:, 2:5], centroids)
    sens = train_rows[:, [4 + s for s in SENSORS]]
    mean = np.stack([sens[cond == k].mean(axis=0) for k in range(len(centroids))])
    std = np.stack([np.maximum(sens[cond == k].std(axis=0), 1e-6) for k in range(len(centroids))])

    def windows_of(rows_by_unit):
        xs, ys = [], []
        for rows in rows_by_unit:
            f = features(rows, centroids, mean, std)
            n = len(f)
            rul = np.minimum(n - 1 - np.arange(n), RUL_CAP)
            # every prefix ending at t (early ones padded like short test units)
            for t in range(n):
                xs.append(last_window(f[: t + 1]))
                ys.append(rul[t])
        return np.stack(xs).astype(np.float32), np.array(ys, dtype=np.float32)

    xtr, ytr = windows_of([data[d][u] for d in DATASETS for u in split[d][0]])
    xva, yva = windows_of([data[d][u] for d in DATASETS for u in split[d][1]])
    print(f"windows train {len(xtr)} val {len(xva)}; prep {time.time() - t0:.0f}s", flush=True)

    model = RulCnn()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)[: int(len(xt) * args.epoch_fraction)]
        tot = 0.0
        for i in range(0, len(perm), 256):
            idx = perm[i:i + 256]
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            if ep == 0 and i == 256 * 50:
                print(f"50 batches in {time.time() - t0:.0f}s", flush=True)
        sched.step()
        model.eval()
        with torch.no_grad():
            pv = model(torch.from_numpy(xva)).squeeze(1).numpy()
        print(f"epoch {ep + 1}/{args.epochs} train_rmse {np.sqrt(tot / len(perm)):.2f} "
              f"val_rmse_all_windows {np.sqrt(np.mean((pv - yva) ** 2)):.2f} {time.time() - t0:.0f}s", flush=True)

    model.eval()
    onnx_path = os.path.join(MODELS, "rul-cmapss.onnx")
    torch.onnx.export(model, torch.zeros(1, WINDOW, N_FEAT), onnx_path, input_names=["window"],
                      output_names=["rul"], dynamic_axes={"window": {0: "batch"}, "rul": {0: "batch"}},
                      opset_version=13)

    def predict(x):
        with torch.no_grad():
            return np.clip(model(torch.from_numpy(np.asarray(x, dtype=np.float32))).squeeze(1).numpy(), 0, None)

    # Uncertainty: residual spread of all validation windows, by predicted-RUL band.
    pv = predict(xva)
    bands = [25, 50, 75, 100, 1e9]
    sigma = []
    lo = -1
    for hi in bands:
        m = (pv > lo) & (pv <= hi)
        sigma.append(float(np.sqrt(np.mean((pv[m] - yva[m]) ** 2))) if m.sum() > 10 else 20.0)
        lo = hi
    bias = float(np.mean(pv - yva))

    # Held-out test-format files and their figures.
    import make_heldout
    results = {}
    fixture_units = []
    for d in DATASETS:
        test = truncate_heldout(d, {u: data[d][u] for u in split[d][1]})
        make_heldout.write(d, test, os.path.join(HERE, "heldout"))
        wins = np.stack([last_window(features(rows, centroids, mean, std)) for rows, _ in test])
        pred = predict(wins)
        truth = np.array([r for _, r in test], dtype=np.float64)
        results[d] = {
            "units": len(test),
            "rmse": float(np.sqrt(np.mean((pred - truth) ** 2))),
            "rmse_capped125": float(np.sqrt(np.mean((pred - np.minimum(truth, RUL_CAP)) ** 2))),
            "phm08": phm08_score(pred, truth),
        }
        print(d, results[d], flush=True)
        # fixture: a short unit (padding path) and two long ones
        order = sorted(range(len(test)), key=lambda i: len(test[i][0]))
        for i in (order[0], order[len(order) // 2], order[-1]):
            rows, rul = test[i]
            fixture_units.append({"dataset": d, "unit": int(rows[0, 0]), "rows": rows.tolist(),
                                  "window": wins[i].astype(float).tolist(), "predicted_rul": float(pred[i])})

    onnx_bytes = open(onnx_path, "rb").read()
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    entry = {
        "name": "rul-cmapss",
        "version": VERSION,
        "kind": "rul",
        "file": "rul-cmapss.onnx",
        "sha256": sha,
        "description": "Turbofan remaining useful life (cycles) from a 30-cycle window, trained on C-MAPSS FD001-FD004",
        "inputs": [{
            "name": "window",
            "shape": [-1, WINDOW, N_FEAT],
            "type": "float32",
            "features": [f"sensor{s}" for s in SENSORS] + ["cycle"],
            "units": ["as in C-MAPSS"] * len(SENSORS) + ["cycles"],
            "normalisation": {
                "type": "per-condition-zscore",
                "settingScale": SETTING_SCALE.tolist(),
                "conditions": centroids.tolist(),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "cycleScale": CYCLE_SCALE,
                "window": WINDOW,
                "padding": "repeat-first-row",
            },
        }],
        "outputs": [{
            "name": "rul", "shape": [-1, 1], "type": "float32", "unit": "cycles", "cap": RUL_CAP,
            "uncertainty": {"type": "gaussian-residual", "bias": bias,
                            "bandUpper": bands[:-1] + [None], "sigma": sigma},
        }],
    }
    man_path = os.path.join(MODELS, "manifest.json")
    manifest = {"schemaVersion": 1, "models": []}
    if os.path.exists(man_path):
        manifest = json.load(open(man_path))
    manifest["models"] = [m for m in manifest["models"] if m["name"] != entry["name"]] + [entry]
    manifest["models"].sort(key=lambda m: m["name"])
    with open(man_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(man_path + ".tmp", man_path)

    val = {"params": n_params, "onnx_bytes": len(onnx_bytes), "sha256": sha, "epochs": args.epochs,
           "train_seconds": round(time.time() - t0), "uncertainty_sigma": sigma, "bias": bias,
           "val_units": {d: split[d][1] for d in DATASETS}, "heldout": results}
    json.dump(val, open(os.path.join(HERE, "validation.json"), "w"), indent=1)
    fx_dir = os.path.join(REPO, "tests", "EdgeTwin.Twin.Tests", "Models", "Fixtures")
    os.makedirs(fx_dir, exist_ok=True)
    json.dump({"model": "rul-cmapss", "sha256": sha, "units": fixture_units},
              open(os.path.join(fx_dir, "rul-fixture.json"), "w"))
    write_card(val)
    print(json.dumps({k: v for k, v in val.items() if k != "val_units"}, indent=1))


if __name__ == "__main__":
    main()
