#!/usr/bin/python3
"""Train the multivariate machine anomaly model (reconstruction-error autoencoder) on simulator data.

Input: the CSV written by the C# test helper (tests/EdgeTwin.Twin.Tests/Multivariate/MachineGroupData.cs):
    EDGETWIN_MV_EXPORT=/tmp/mv-train.csv dotnet run --project tests/EdgeTwin.Twin.Tests -- -method "*ExportTrainingSet"
Output (beside this script's parent, models/): mv-machine.onnx, its entry in manifest.json, multivariate/MODEL_CARD.md.

The ONNX graph takes a batch of normalised windows [batch, 16, 3] and returns each window's mean squared
reconstruction error [batch, 1]; the gateway maps the error to a score with the calibrated threshold in the manifest.
Reproducible: seeds pinned, one thread, deterministic algorithms.
"""
import argparse
import hashlib
import json
import os
import random

import numpy as np
import pandas as pd
import torch
from torch import nn

NAME = "mv-machine"
VERSION = "1.0.0"
WINDOW = 16
FEATURES = ["motor_torque", "motor_temperature", "inverter_temperature"]
UNITS = ["%", "Cel", "%"]
TRAIN_RUNS = range(1, 9)      # seeds 1-8: training
CALIBRATION_RUNS = (9, 10)    # seeds 9-10: healthy runs held out for the threshold
QUANTILE = 0.999


def validate(model, df, mean, std, threshold):
    """Detection on fault runs: the faulty machine's first window at or above the threshold after the fault, and the
    share of healthy windows at or above it."""
    delays, missed, healthy, alarms = [], 0, 0, 0
    for _, g in df.groupby(["run", "machine"], sort=True):
        x = ((g[FEATURES].to_numpy(np.float32) - mean) / std).astype(np.float32)
        idx = np.arange(WINDOW)[None, :] + np.arange(len(x) - WINDOW + 1)[:, None]
        with torch.no_grad():
            e = model(torch.from_numpy(x[idx])).numpy().ravel()
        faulty = g.faulty.to_numpy()[WINDOW - 1:] == 1
        t = g.time_s.to_numpy()[WINDOW - 1:]
        healthy += int((~faulty).sum())
        alarms += int((e[~faulty] >= threshold).sum())
        if faulty.any():
            hit = np.where(faulty & (e >= threshold))[0]
            if len(hit):
                delays.append((t[hit[0]] - t[faulty][0]) / 60)
            else:
                missed += 1
    return (f"validation: detected {len(delays)}/{len(delays) + missed} faults, median delay {np.median(delays) if delays else float('nan'):.1f} min; "
            f"healthy windows at or above the threshold {alarms}/{healthy} ({100 * alarms / max(healthy, 1):.3f} %)")


def windows(df, mean, std):
    out = []
    for _, g in df.groupby(["run", "machine"], sort=True):
        x = ((g[FEATURES].to_numpy(np.float32) - mean) / std).astype(np.float32)
        idx = np.arange(WINDOW)[None, :] + np.arange(len(x) - WINDOW + 1)[:, None]
        out.append(x[idx])
    return np.concatenate(out)


class AutoEncoder(nn.Module):
    def __init__(self, hidden, bottleneck):
        super().__init__()
        d = WINDOW * len(FEATURES)
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, bottleneck), nn.Tanh(),
                                 nn.Linear(bottleneck, hidden), nn.Tanh(), nn.Linear(hidden, d))

    def forward(self, w):
        flat = w.reshape(w.shape[0], -1)
        return self.net(flat).reshape(w.shape)


class ErrorModel(nn.Module):
    """What ships: window in, mean squared reconstruction error out."""

    def __init__(self, ae):
        super().__init__()
        self.ae = ae

    def forward(self, window):
        r = self.ae(window)
        return ((window - r) ** 2).mean(dim=(1, 2)).unsqueeze(1)


def main():
    global WINDOW
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="CSV from MachineGroupData (healthy runs, seeds 1-10)")
    p.add_argument("--models", default=os.path.dirname(here), help="models directory (manifest.json)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--bottleneck", type=int, default=6)
    p.add_argument("--window", type=int, default=WINDOW)
    p.add_argument("--validation", help="CSV of validation fault runs (seeds 51-58) to report detection figures; not used for training")
    a = p.parse_args()
    WINDOW = a.window

    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    df = pd.read_csv(a.data)
    train = df[df.run.isin(TRAIN_RUNS)]
    calib = df[df.run.isin(CALIBRATION_RUNS)]
    mean = train[FEATURES].mean().to_numpy(np.float32)
    std = train[FEATURES].std().to_numpy(np.float32)
    xt = torch.from_numpy(windows(train, mean, std))
    xc = torch.from_numpy(windows(calib, mean, std))

    ae = AutoEncoder(a.hidden, a.bottleneck)
    opt = torch.optim.Adam(ae.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(7)
    for epoch in range(a.epochs):
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), 256):
            b = xt[perm[i:i + 256]]
            loss = ((ae(b) - b) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        if epoch % 10 == 9 or epoch == a.epochs - 1:
            print(f"epoch {epoch + 1}: train mse {total / len(xt):.5f}")

    model = ErrorModel(ae).eval()
    with torch.no_grad():
        et = model(xt).numpy().ravel()
        ec = model(xc).numpy().ravel()
    threshold = float(np.quantile(ec, QUANTILE))
    print(f"calibration errors: p50 {np.median(ec):.5f} p99 {np.quantile(ec, 0.99):.5f} p99.9 {threshold:.5f} max {ec.max():.5f}")

    validation = ""
    if a.validation:
        validation = validate(model, pd.read_csv(a.validation), mean, std, threshold)
        print(validation)

    onnx_path = os.path.join(a.models, NAME + ".onnx")
    torch.onnx.export(model, xt[:1], onnx_path, input_names=["window"], output_names=["error"],
                      dynamic_axes={"window": {0: "batch"}, "error": {0: "batch"}}, opset_version=13)
    sha = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()

    entry = {
        "name": NAME,
        "version": VERSION,
        "kind": "multivariate-anomaly",
        "file": NAME + ".onnx",
        "sha256": sha,
        "description": "Machine on a VFD (torque, motor temperature, inverter temperature): reconstruction error of a 16-sample window (30 s apart) by an autoencoder trained on healthy simulator runs",
        "inputs": [{
            "name": "window", "shape": [-1, WINDOW, len(FEATURES)], "type": "float32",
            "features": FEATURES, "units": UNITS,
            "normalisation": {"type": "zscore", "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                              "window": WINDOW, "intervalSeconds": 30},
        }],
        "outputs": [{
            "name": "error", "shape": [-1, 1], "type": "float32", "unit": "mean squared error of the normalised window",
            "calibration": {"threshold": threshold, "quantile": QUANTILE, "windows": int(len(ec)),
                            "score": "1 - 2^(-error/threshold): 0.5 at the threshold"},
        }],
    }
    manifest_path = os.path.join(a.models, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {"schemaVersion": 1, "models": []}
    manifest["models"] = [m for m in manifest["models"] if m["name"] != NAME] + [entry]
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, manifest_path)

    card = os.path.join(here, "MODEL_CARD.md")
    with open(card, "w") as f:
        f.write(f"""# Model card: {NAME} {VERSION}

- **What**: reconstruction-error autoencoder over a window of {WINDOW} samples (30 s apart, 8 minutes) of one machine's
  drive series: {', '.join(f'{n} ({u})' for n, u in zip(FEATURES, UNITS))}. Dense 48-32-6-32-48, tanh; the ONNX graph
  returns the window's mean squared reconstruction error in normalised units (`error`, [batch, 1]).
- **Data**: the EdgeTwin simulator only (`MachineGroupData`, ABB ACS580 register scales): seeds 1-8 for training,
  9-10 held out for calibration; 4 machines per run, 24 h each, healthy bearings (wear 0-0.25), load factor 0.4-0.9,
  ordinary stops of 20-90 min. {len(xt)} training windows, {len(xc)} calibration windows.
- **Normalisation**: z-score per feature with the training mean {np.round(mean, 3).tolist()} and std {np.round(std, 3).tolist()}.
- **Calibration**: threshold = {QUANTILE} quantile of the calibration windows' error = {threshold:.5f}
  (p50 {np.median(ec):.5f}, p99 {np.quantile(ec, 0.99):.5f}, max {ec.max():.5f}). Gateway score = 1 - 2^(-error/threshold).
- **Intended use**: bearing faults (advanced wear raises the motor temperature against the torque that explains it).
  Detection figures on held-out simulator runs: see `src/EdgeTwin.Twin/Multivariate/README.md` (measured by the C# tests).
- **Limits**: trained on simulated drives only; a real machine needs retraining on its own healthy data. A machine that
  is normally hotter than the simulated ones (other ambient) scores high: retrain or recalibrate per site.
- **Reproduce**: `EDGETWIN_MV_EXPORT=/tmp/mv-train.csv dotnet run --project tests/EdgeTwin.Twin.Tests -- -method "*ExportTrainingSet"`,
  then `/usr/bin/python3 models/multivariate/train_mv_machine.py --data /tmp/mv-train.csv` (sha256 {sha}).
""")
    print(f"wrote {onnx_path} sha256 {sha}, threshold {threshold:.5f}")


if __name__ == "__main__":
    main()
