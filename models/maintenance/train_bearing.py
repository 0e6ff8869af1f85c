#!/usr/bin/python3
"""Train the machine-health (bearing) RUL model on simulated bearing-wear runs and export it for the gateway.

Data: `edgetwin bench bearing --export-training CSV` for process machines and `--asset fan` for cooling units' blowers
(seeded simulator runs through the agent's own interval-mean code,
src/EdgeTwin.Twin/Models/Maintenance/BearingFeatureWindow.cs), one row per 30-minute interval per machine with the
mean vibration RMS, kurtosis and bearing temperature and the true hours to failure. One model serves both: a fan's
speed follows the day, which a day's window shows it. This script runs those commands itself unless --data and
--fan-data are given. Reproducible: seeds pinned, one torch thread.
Writes:
  models/bearing-rul.onnx         input "window" [N, 48, 3] float32 (24 h of raw 30-minute interval means), output "rul" [N, 1] hours
  models/manifest.json            the "bearing-rul" entry (sha256, shapes, interval, uncertainty)
  models/bearing-rul.md           model card
  models/maintenance/validation.json
Usage: /usr/bin/python3 models/maintenance/train_bearing.py [--data CSV --fan-data CSV] [--epochs N]
"""
import argparse
import csv
import hashlib
import json
import os
import subprocess
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
REPO = os.path.dirname(MODELS)
SEED = 4242
DATA_SEED = 1001          # simulator seed of the training runs (the bench's default seed is 7: other machines)
WINDOW = 48               # intervals per window (24 h of 30-minute means)
INTERVAL_S = 1800
CAP = 120.0               # hours; RUL beyond this reads as "healthy"
FEATURES = ["vibration_rms", "vibration_kurtosis", "bearing_temperature"]
VERSION = "1.1.0"


class BearingMlp(nn.Module):
    """Scales the raw interval means with training statistics, then a small MLP over the flattened window."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(WINDOW * len(FEATURES), 48), nn.ReLU(),
                                 nn.Linear(48, 24), nn.ReLU(), nn.Linear(24, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std) * CAP / 2.0 + CAP / 2.0


def export_data(path, machines, healthy, days, asset):
    binary = os.path.join(REPO, "src", "EdgeTwin.Agent", "bin", "Release", "net10.0", "edgetwin")
    cmd = [binary] if os.path.exists(binary) else ["dotnet", "run", "-c", "Release", "--project",
                                                    os.path.join(REPO, "src", "EdgeTwin.Agent"), "--"]
    cmd += ["bench", "bearing", "--machines", str(machines), "--healthy", str(healthy), "--days", str(days),
            "--seed", str(DATA_SEED), "--asset", asset, "--export-training", path]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, timeout=3600)


def load(path, days):
    by_machine = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            by_machine.setdefault(r["machine"], []).append(r)
    seqs = []
    for m, rows in sorted(by_machine.items()):
        x = np.array([[float(r[k]) for k in FEATURES] for r in rows], dtype=np.float32)
        hours = np.array([float(r["hours"]) for r in rows])
        if rows[0]["hours_to_failure"] != "":
            rul = np.array([float(r["hours_to_failure"]) for r in rows])
            keep = np.ones(len(rows), dtype=bool)
        else:
            # no failure inside the run: the truth is at least the time left in it; usable where that exceeds the cap
            rul = np.full(len(rows), CAP)
            keep = (days * 24 - hours) >= CAP
        seqs.append((m, x, np.minimum(rul, CAP).astype(np.float32), keep))
    return seqs


def windows(seqs):
    xs, ys = [], []
    for _, x, y, keep in seqs:
        for t in range(len(x)):
            if not keep[t]:
                continue
            lo = t + 1 - WINDOW
            w = x[max(lo, 0): t + 1]
            if lo < 0:
                w = np.concatenate([np.repeat(w[:1], -lo, axis=0), w])
            xs.append(w)
            ys.append(y[t])
    return np.stack(xs), np.array(ys, dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="machines' training CSV from `edgetwin bench bearing --export-training` (default: run it)")
    ap.add_argument("--fan-data", help="fans' training CSV from `... --asset fan --export-training` (default: run it)")
    ap.add_argument("--machines", type=int, default=60)
    ap.add_argument("--healthy", type=int, default=20)
    ap.add_argument("--fans", type=int, default=60)
    ap.add_argument("--healthy-fans", type=int, default=20)
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)
    t0 = time.time()
    data = args.data or "/tmp/edgetwin-bearing-train.csv"
    fan_data = args.fan_data or "/tmp/edgetwin-bearing-train-fans.csv"
    if not args.data:
        export_data(data, args.machines, args.healthy, args.days, "machine")
    if not args.fan_data:
        export_data(fan_data, args.fans, args.healthy_fans, args.days, "fan")
    rng = np.random.default_rng(SEED)
    fit, val, val_by_asset = [], [], {}
    # Split by machine within each asset, so that both have held-out machines for the figures.
    for asset, path in (("machine", data), ("fan", fan_data)):
        seqs = load(path, args.days)
        order = rng.permutation(len(seqs))
        n_val = len(seqs) // 5
        val_by_asset[asset] = [seqs[i] for i in sorted(order[:n_val])]
        val += val_by_asset[asset]
        fit += [seqs[i] for i in sorted(order[n_val:])]
    xtr, ytr = windows(fit)
    xva, yva = windows(val)
    flat = xtr.reshape(-1, len(FEATURES))
    mean, std = flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-3)
    print(f"windows fit {len(xtr)} val {len(xva)}", flush=True)

    model = BearingMlp(mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)
    best, best_state, since = float("inf"), None, 0
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(perm), 256):
            idx = perm[i:i + 256]
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pv = model(torch.from_numpy(xva)).squeeze(1).numpy()
        rmse = float(np.sqrt(np.mean((pv - yva) ** 2)))
        print(f"epoch {ep + 1} val_rmse {rmse:.2f} h {time.time() - t0:.0f}s", flush=True)
        if rmse < best - 1e-3:
            best, since = rmse, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= args.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        pv = np.clip(model(torch.from_numpy(xva)).squeeze(1).numpy(), 0, None)
    bands = [24, 48, 72, 96, 1e9]
    sigma, lo = [], -1
    for hi in bands:
        m = (pv > lo) & (pv <= hi)
        sigma.append(float(np.sqrt(np.mean((pv[m] - yva[m]) ** 2))) if m.sum() > 10 else 24.0)
        lo = hi
    bias = float(np.mean(pv - yva))
    near = yva < 72
    val_fig = {"rmse_hours": best, "rmse_hours_rul_below_72": float(np.sqrt(np.mean((pv[near] - yva[near]) ** 2))),
               "bias": bias, "sigma": sigma, "fit_machines": len(fit), "val_machines": len(val),
               "val_machine_ids": [m for m, *_ in val]}
    for asset, seqs in val_by_asset.items():
        xa, ya = windows(seqs)
        with torch.no_grad():
            pa = np.clip(model(torch.from_numpy(xa)).squeeze(1).numpy(), 0, None)
        val_fig[f"rmse_hours_{asset}s"] = float(np.sqrt(np.mean((pa - ya) ** 2)))
        val_fig[f"bias_{asset}s"] = float(np.mean(pa - ya))
    print(val_fig, flush=True)

    onnx_path = os.path.join(MODELS, "bearing-rul.onnx")
    torch.onnx.export(model, torch.zeros(1, WINDOW, len(FEATURES)), onnx_path, input_names=["window"],
                      output_names=["rul"], dynamic_axes={"window": {0: "batch"}, "rul": {0: "batch"}}, opset_version=13)
    blob = open(onnx_path, "rb").read()
    sha = hashlib.sha256(blob).hexdigest()
    params = sum(p.numel() for p in model.parameters())
    entry = {
        "name": "bearing-rul", "version": VERSION, "kind": "rul", "file": "bearing-rul.onnx", "sha256": sha,
        "description": "Bearing remaining useful life (hours) of a machine's motor or a cooling unit's blower from 24 h "
                       "of 30-minute means of vibration RMS, kurtosis and bearing temperature; trained on simulated "
                       "bearing-wear runs of both",
        "inputs": [{"name": "window", "shape": [-1, WINDOW, len(FEATURES)], "type": "float32", "features": FEATURES,
                    "units": ["mm/s", "1", "Cel"],
                    "normalisation": {"type": "interval-means", "intervalSeconds": INTERVAL_S, "window": WINDOW,
                                      "minSamples": 3, "padding": "repeat-first-row", "scaling": "in-model",
                                      "mean": mean.tolist(), "std": std.tolist()}}],
        "outputs": [{"name": "rul", "shape": [-1, 1], "type": "float32", "unit": "h", "cap": CAP,
                     "uncertainty": {"type": "gaussian-residual", "bias": bias, "bandUpper": bands[:-1] + [None],
                                     "sigma": sigma}}],
    }
    man_path = os.path.join(MODELS, "manifest.json")
    manifest = json.load(open(man_path)) if os.path.exists(man_path) else {"schemaVersion": 1, "models": []}
    # In place, so that the other models' entries (written by their own scripts) keep their order.
    names = [m["name"] for m in manifest["models"]]
    if "bearing-rul" in names:
        manifest["models"][names.index("bearing-rul")] = entry
    else:
        manifest["models"].append(entry)
    with open(man_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(man_path + ".tmp", man_path)
    val_fig.update({"params": params, "onnx_bytes": len(blob), "sha256": sha, "train_seconds": round(time.time() - t0),
                    "data_seed": DATA_SEED, "machines": args.machines, "healthy": args.healthy, "fans": args.fans,
                    "healthy_fans": args.healthy_fans, "days": args.days})
    json.dump(val_fig, open(os.path.join(HERE, "validation.json"), "w"), indent=1)
    sig = ", ".join(f"{s:.1f}" for s in sigma)
    card = f"""# Model card: bearing-rul {VERSION}

Remaining useful life of a rolling-element bearing, in hours, from the last 24 h of 30-minute means of vibration
velocity RMS (mm/s), vibration kurtosis and bearing temperature (°C): a process machine's motor, or a cooling unit's
blower. Written by `models/maintenance/train_bearing.py` (seeds pinned); entry `bearing-rul` in `models/manifest.json`;
run on the gateway by the maintenance stage (`models.maintenance`, src/EdgeTwin.Agent/Twin/Models/MaintenanceStage.cs).

## Data
Simulated only, seed {DATA_SEED}, {args.days:g} days per asset:
`edgetwin bench bearing --machines {args.machines} --healthy {args.healthy} --export-training CSV` (process machines at
rated speed under a daily load cycle) and `edgetwin bench bearing --asset fan --machines {args.fans} --healthy {args.healthy_fans} --export-training CSV`
(blowers whose speed follows the room's daily heat load, 30-100 % of rated; wear, imbalance vibration and defect
symptoms move with the speed). src/EdgeTwin.Simulator/Physics/SimMachine.cs: Weibull defect onset, log-normally
spread growth to failure, kurtosis then RMS then temperature symptoms, process knocks. Interval means come from the
agent's own `BearingFeatureWindow`, so training and gateway features are the same code. Split by machine within each
asset: {len(fit)} for fitting, {len(val)} for early stopping and the figures below. `edgetwin bench bearing` defaults to
seed 7: other machines than the training runs.

## Model
MLP (144 → 48 → 24 → 1) with the input scaling inside the graph, {params:,} parameters, {len(blob) / 1024:.0f} KB ONNX
(opset 13). Target: hours to failure (the simulated assets run around the clock) capped at {CAP:.0f} h (a healthy
bearing reads {CAP:.0f}). Adam 2e-3, early stopping on the validation machines (patience {args.patience}).

## Validation (held-out machines and fans, all windows)
RMSE {best:.1f} h (capped target); {val_fig['rmse_hours_rul_below_72']:.1f} h where the truth is below 72 h. Machines
{val_fig['rmse_hours_machines']:.1f} h (bias {val_fig['bias_machines']:+.2f} h), fans {val_fig['rmse_hours_fans']:.1f} h (bias {val_fig['bias_fans']:+.2f} h).
Uncertainty for maintenance predictions: bias {bias:.2f} h, sigma by predicted-RUL band (<=24, <=48, <=72, <=96, >96 h):
{sig} h. The bench figures (warning lead, false alarms) are in src/EdgeTwin.Agent/Twin/Models/README.md.

## Limits
The RUL is capped at {CAP:.0f} h, so the agent answers failure probabilities over a horizon shorter than the cap
(cap − bias − 3σ of the top band; `edgetwin check` says so at `models.maintenance.horizon`). The sigmas are validation
averages. Trained on the simulator's bearing physics only; a real fleet needs its own run-to-failure or maintenance
records. A fan's remaining life depends on the speed it will run at, which the model infers from a day of symptoms:
other duties than trained (one speed all day, 40 % or 100 % of rated, twice the daily swing) are measured by
`edgetwin bench bearing --asset fan --fan-speed F --fan-swing F` (src/EdgeTwin.Agent/Twin/Models/README.md). Sensor
mounting and machine size shift the vibration baseline the model has learned.
"""
    open(os.path.join(MODELS, "bearing-rul.md"), "w").write(card)
    print(json.dumps({k: v for k, v in val_fig.items() if k != "val_machine_ids"}, indent=1))


if __name__ == "__main__":
    main()
