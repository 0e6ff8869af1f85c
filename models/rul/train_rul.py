#!/usr/bin/python3
"""Train the C-MAPSS RUL model and export it for the gateway.

Reproducible (seeds pinned, single-threaded BLAS order fixed by torch.set_num_threads).
Writes:
  models/rul-cmapss.onnx        the model (input "window" [N,W,15] float32, W = --window, output "rul" [N,1])
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
import cmapss_common  # noqa: E402
from cmapss_common import (CYCLE_SCALE, DATASETS, RUL_CAP, SEED, SENSORS, SETTING_SCALE, WINDOW,  # noqa: E402
                           UNCERTAINTY_BANDS, condition_of, features, fit_conditions, fit_normalisation, last_window, load,
                           phm08_score, residual_bands, split_units, truncate_heldout, units)

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
REPO = os.path.dirname(MODELS)
N_FEAT = len(SENSORS) + 1
VERSION = "1.3.0"  # the committed model; a run writing a new model bumps it (a gated one would be 1.4.0)
ES_FRACTION = 0.15


class RulCnn(nn.Module):
    """Small 1D CNN over a [N, WINDOW, N_FEAT] window; ~27k parameters."""

    def __init__(self, cap=RUL_CAP, window=WINDOW):
        super().__init__()
        self.cap = cap
        self.conv = nn.Sequential(
            nn.Conv1d(N_FEAT, 32, 5, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 5, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(),
            nn.Conv1d(32, 8, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * window, 64), nn.ReLU(),
                                  nn.Linear(64, 1))

    def forward(self, x):
        return self.head(self.conv(x.transpose(1, 2))) * self.cap / 2.0 + self.cap / 2.0


class Ensemble(nn.Module):
    """Mean of the members' outputs: one ONNX graph, one session on the gateway."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members], dim=0).mean(dim=0)


class Calibrated(nn.Module):
    """Piecewise-linear output map g(pred) fitted on cross-validation out-of-fold predictions
    (models/rul/calibrate.py): turns the capped output into the expected uncapped RUL of a test cut given
    that output. Hinge form (Clip/Mul/Add in ONNX): g = c0 + sum_i c_i * clamp(pred - k_i, 0, k_(i+1) - k_i)
    + c_last * max(pred - k_last, 0)."""

    def __init__(self, model, knots, coef):
        super().__init__()
        self.model = model
        k = torch.tensor(knots, dtype=torch.float32)
        self.register_buffer("lo", k)
        self.register_buffer("width", torch.cat([k[1:] - k[:-1], torch.tensor([1e6])]))
        self.register_buffer("c0", torch.tensor([coef[0]], dtype=torch.float32))
        self.register_buffer("c", torch.tensor(coef[1:], dtype=torch.float32))

    def forward(self, x):
        p = self.model(x)  # [N, 1]
        ramp = torch.minimum(torch.relu(p - self.lo), self.width)  # [N, K]
        return torch.relu(self.c0 + (ramp * self.c).sum(dim=1, keepdim=True))


class Gated(nn.Module):
    """Single-condition specialist gated by the input (1.4.0): the window's last column is 1 for rows in the
    sea-level condition (the only one of FD001/FD003); a window all of whose rows are in it goes to the
    specialist (trained on FD001/FD003 windows only), any other to the joint model (all four data sets). Both
    branches run for every window (Slice/ReduceMin/Where-free arithmetic in ONNX, one session)."""

    def __init__(self, specialist, joint):
        super().__init__()
        self.specialist = specialist
        self.joint = joint

    def forward(self, x):
        base = x[:, :, :N_FEAT]
        gate = (torch.amin(x[:, :, N_FEAT], dim=1, keepdim=True) > 0.5).to(x.dtype)  # [N, 1]
        return gate * self.specialist(base) + (1.0 - gate) * self.joint(base)


def write_card(val):
    """models/rul-cmapss.md from the validation figures (also: --card-only, from validation.json)."""
    rows = "\n".join(f"| {d} | {r['units']} | {r['rmse']:.2f} | {r['rmse_capped125']:.2f} | {r['phm08']:.0f} |"
                     for d, r in val["heldout"].items())
    sig = ", ".join(f"{s:.1f}" for s in val["uncertainty_sigma"])
    w = val.get("window", 30)
    h = val["heldout"]
    met = [d for d in ("FD001", "FD003") if h[d]["rmse"] <= 12.0]
    target_text = ("**met** on both" if len(met) == 2 else
                   f"**met on {met[0]} only**" if met else "**not met**")
    # Every candidate evaluated for the current version (models/rul/candidates.json, filled from the dry runs'
    # logs): chosen on the early-stopping units, held-out figures listed for all of them.
    cand_path = os.path.join(HERE, "candidates.json")
    cands = json.load(open(cand_path)) if os.path.exists(cand_path) else {"candidates": []}
    def pair(r, score):
        return f"{r['FD001']:.2f} / {r['FD003']:.2f} ({score:.2f})" if r else "not run"

    cand_rows = "\n".join(
        f"| {c['name']} | {c['config']} | {pair(c.get('cv'), (c.get('cv') or {}).get('score', 0))} | "
        f"{pair(c.get('es'), c.get('es_score', 0))} | "
        + " | ".join(f"{c['heldout'][d][0]:.2f} ({c['heldout'][d][1]:.2f})" if c.get("heldout") else "not run"
                     for d in DATASETS) + " |"
        for c in cands["candidates"])
    if val.get("max_rul"):
        target = (f"the uncapped RUL, trained only on windows a test cut can end on (true RUL <= {val['max_rul']:.0f}, "
                  "all of them, which is the test cuts' distribution), so the output is the expected RUL of a test cut")
    else:
        target = f"piecewise-linear RUL capped at {val.get('cap', RUL_CAP):.0f}"
    calib = val.get("calibration")
    calib_text = ("" if not calib else
                  " The ensemble mean then goes through a piecewise-linear output map inside the graph (knots "
                  + ", ".join(f"{k:.0f}" for k in calib["knots"]) + "; `models/rul/calibration.json`), fitted by "
                  "`models/rul/calibrate.py` on the 5-fold cross-validation out-of-fold predictions of FD001/FD003 "
                  "(`models/rul/cv_rul.py`): it maps the members' mean to the mean true RUL of the test cuts given "
                  "that output, mostly flattening the top (healthy windows) to about "
                  + f"{calib.get('top', 128):.0f} cycles.")
    gate = val.get("gate")
    version = val.get("version", "1.3.0")  # validation.json of 1.3.0 predates the field
    gate_pre = ("" if not gate else
                f"\n6. A 16th column, `inCondition{gate['condition']}`: 1 when the cycle's operating condition is "
                f"condition {gate['condition']} (sea level: the only one of FD001/FD003), else 0. It only feeds the gate.")
    gate_text = ("" if not gate else
                 f" **Gated (since 1.4.0)**: when all {w} rows of the window are in condition {gate['condition']} the "
                 f"graph returns the single-condition specialist above (trained on FD001/FD003 windows only); any "
                 f"other window goes to the joint model of 1.3.0 ({gate['joint_members']} members trained on all four "
                 f"data sets, with its own output map). Both branches run for every window (one ONNX session; the gate "
                 f"is ReduceMin of the indicator column). No non-held-out FD002/FD004 training window is all in "
                 f"condition {gate['condition']}.")
    card = f"""# Model card: rul-cmapss {version}

Remaining useful life (in cycles) of a turbofan engine from its last {w} cycles, trained on NASA's C-MAPSS
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
4. Window: the last {w} cycles; shorter histories padded at the front by repeating the first row.
5. Target: {target}.{gate_pre}

## Model
Mean of {val.get('members', 1)} 1D CNNs (4 conv layers, 32 channels, then a 64-unit dense layer; seeds differ) in one ONNX
graph, {val['params']:,} parameters, {val['onnx_bytes'] / 1024:.0f} KB (opset 13, input `window` [N,{w},{15 + (1 if gate else 0)}] float32, output
`rul` [N,1]). Target: {target}.{calib_text}{gate_text} Each member: Adam 2e-3, cosine schedule,
at most {val['epochs']} epochs (all FD001/FD003 windows and a share of the FD002/FD004 ones per epoch), early stopping
on the issue's metric (uncapped RMSE of test-format cuts) of the early-stopping units: 15 % of the *training* units,
disjoint from the held-out ones. A run replaces the committed model only when its early-stopping score is better
(`--only-if-better`); the held-out units are never used to choose. Early-stopping RMSE of this model:
{', '.join(f"{k} {v:.2f}" for k, v in val.get('es_rmse', {}).items())}. {val.get('train_text', 'CPU, 1 thread, ' + str(val['train_seconds']) + ' s wall on the')}
shared, heavily loaded 2-core machine (with OpenBLAS; Debian's reference BLAS is ~10× slower).

## Validation (held-out units)
| data set | test cuts | RMSE (uncapped truth) | RMSE (truth capped at 125) | PHM08 score |
|---|---|---|---|---|
{rows}

Uncertainty for maintenance predictions: residuals of all early-stopping windows, bias {val['bias']:.2f} cycles, sigma by
predicted-RUL band (<=25, <=50, <=75, <=100, >100): {sig} cycles.

## Candidates evaluated for this version
{cands.get("note", "")}

| candidate | configuration | 5-fold CV RMSE FD001 / FD003 (score) | early-stopping RMSE FD001 / FD003 (score) | held-out FD001 | held-out FD002 | held-out FD003 | held-out FD004 |
|---|---|---|---|---|---|---|---|
{cand_rows}

Held-out cells: RMSE against uncapped truth (against truth capped at 125). A score is the root mean square of the
FD001 and FD003 figures. For 1.3.0 the 5-fold CV score chose the recipe and the early-stopping score had to beat the
committed model's before anything was written (`--only-if-better`); the held-out figures were computed after that and
chose nothing. They did not confirm the gain: against 1.2.0 the held-out RMSE is 10.83 vs 10.77 on FD001 and 13.87 vs
12.91 on FD003, within the ±1 noise of 20 units but in the wrong direction for FD003.

## Limits
- Nothing in a healthy window tells how long it will stay healthy: for true RUL above ~100 the best a model can
  give is the mean RUL of healthy test cuts, and the uncapped RMSE counts the spread around it as error (most of the
  gap between the two RMSE columns; in the cross-validation the cuts with true RUL above 125 carry a third of the
  squared error).
- FD002/FD004 (six conditions) are markedly worse than FD001/FD003. The issue's target (RMSE <= 12 on FD001 and
  FD003, uncapped truth) is {target_text} on our held-out protocol (20 % of the training units, 5 cuts each); NASA's
  test files were not used, so the figure on them is unknown. With 20 held-out units per set the held-out RMSE
  moves by about ±1 between equally good models.
- Trained on simulated turbofans; the normalisation is specific to C-MAPSS sensors. It is not a model of the
  gateway's machines: those need a model trained on their own data (see the issue's machine-health item).
"""
    with open(os.path.join(MODELS, "rul-cmapss.md"), "w") as f:
        f.write(card)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "cmapss"))
    ap.add_argument("--epochs", type=int, default=30, help="most epochs per member (early stopping)")
    ap.add_argument("--patience", type=int, default=6, help="epochs without ES improvement before stopping")
    ap.add_argument("--members", type=int, default=1, help="ensemble members (averaged in one ONNX graph)")
    ap.add_argument("--cap", type=float, default=RUL_CAP, help="piecewise-linear RUL cap of the training target")
    ap.add_argument("--max-rul", type=float, default=None,
                    help="train only on windows whose true RUL is at most this (the test cuts' truth range)")
    ap.add_argument("--window", type=int, default=WINDOW, help="cycles per window")
    ap.add_argument("--loss", choices=["mse", "huber"], default="mse")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--multi-fraction", type=float, default=0.3,
                    help="share of the FD002/FD004 windows drawn per epoch")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; on the shared 2-core machine 1 was 4x faster than 2 under load")
    ap.add_argument("--calibration", default=None,
                    help="calibration.json from calibrate.py: piecewise-linear output map inside the ONNX graph")
    ap.add_argument("--from-onnx", default=None,
                    help="comma-separated FILE[:CAP[:N]]: take (the first N) ensemble members from ONNX files written by "
                         "this script, with their training cap, instead of training them")
    ap.add_argument("--save-members", default=None, help="save the trained members' weights here (torch.save)")
    ap.add_argument("--load-members", default=None,
                    help="comma-separated FILE[:CAP[:N]] from --save-members: use these members instead of training "
                         "(members trained in parallel processes with different --seed-offset)")
    ap.add_argument("--seed-offset", type=int, default=0, help="first member's seed index (more seeds, same recipe)")
    ap.add_argument("--single-only", action="store_true",
                    help="train the members on the single-condition data sets (FD001/FD003) only")
    ap.add_argument("--gate-joint", default=None,
                    help="ONNX file of a calibrated joint model written by this script (e.g. 1.3.0, git show "
                         "802ee45:models/rul-cmapss.onnx): the members become a single-condition specialist used for "
                         "windows entirely in the sea-level condition, the joint model for all others (input gets "
                         "an inCondition<k> column)")
    ap.add_argument("--finetune-epochs", type=int, default=0,
                    help="after the joint training (best early-stopping state), this many epochs on FD001/FD003 "
                         "windows only: a single-condition specialist fine-tuned from a joint member")
    ap.add_argument("--finetune-lr", type=float, default=5e-4, help="peak of the fine-tuning's cosine schedule")
    ap.add_argument("--gate-joint-calibration", default=None, help="the joint model's calibration.json")
    ap.add_argument("--dry-run", action="store_true", help="train and print ES figures only; write nothing")
    ap.add_argument("--only-if-better", action="store_true",
                    help="write only when the ES score beats the committed model's (validation.json es_rmse)")
    ap.add_argument("--card-only", action="store_true", help="rewrite the model card from validation.json")
    args = ap.parse_args()
    if args.card_only:
        write_card(json.load(open(os.path.join(HERE, "validation.json"))))
        return
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    cap = args.cap
    cmapss_common.WINDOW = args.window  # last_window reads the module global
    window = args.window

    data = {d: units(load(os.path.join(args.data, f"train_{d}.txt"))) for d in DATASETS}
    split = {d: split_units(d, data[d].keys()) for d in DATASETS}
    # Early-stopping units: a seeded share of the *training* units; the held-out units stay untouched
    # until the final figures.
    fit, es = {}, {}
    for d in DATASETS:
        rng = np.random.default_rng(SEED * 3 + DATASETS.index(d))
        ids = np.array(split[d][0])
        rng.shuffle(ids)
        n_es = int(round(len(ids) * ES_FRACTION))
        fit[d], es[d] = sorted(ids[n_es:].tolist()), sorted(ids[:n_es].tolist())
    centroids, mean, std = fit_normalisation(data, {d: split[d][0] for d in DATASETS})

    def windows_of(rows_by_unit, gate=None):
        xs, ys = [], []
        for rows in rows_by_unit:
            f = features(rows, centroids, mean, std, gate)
            n = len(f)
            true = n - 1 - np.arange(n)
            rul = np.minimum(true, cap)
            # every prefix ending at t (early ones padded like short test units); with --max-rul only those
            # whose true RUL lies in the range the test cuts draw from
            for t in range(n):
                if args.max_rul is not None and true[t] > args.max_rul:
                    continue
                xs.append(last_window(f[: t + 1]))
                ys.append(rul[t])
        return np.stack(xs).astype(np.float32), np.array(ys, dtype=np.float32)

    train_sets = ("FD001", "FD003") if args.single_only else DATASETS
    xtr_d = {d: windows_of([data[d][u] for u in fit[d]]) for d in train_sets}
    xes, yes = windows_of([data[d][u] for d in DATASETS for u in es[d]])
    # Early stopping on the metric: RMSE against uncapped truth of test-format cuts of the ES units
    # of the target data sets (FD001, FD003).
    es_cuts = {d: truncate_heldout(d, {u: data[d][u] for u in es[d]}, n_cuts=10) for d in ("FD001", "FD003")}
    es_x = {d: np.stack([last_window(features(r, centroids, mean, std)) for r, _ in c]) for d, c in es_cuts.items()}
    es_y = {d: np.array([t for _, t in c], dtype=np.float64) for d, c in es_cuts.items()}
    print(f"windows fit {sum(len(v[0]) for v in xtr_d.values())} es {len(xes)}; prep {time.time() - t0:.0f}s",
          flush=True)

    def es_rmse(m):
        m.eval()
        with torch.no_grad():
            r = {d: float(np.sqrt(np.mean((np.clip(m(torch.from_numpy(es_x[d])).squeeze(1).numpy(), 0, None)
                                           - es_y[d]) ** 2))) for d in es_x}
        return r

    gen = torch.Generator().manual_seed(SEED)

    def train_member(k):
        torch.manual_seed(SEED + 101 * k)
        model = RulCnn(cap, window)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        best, best_state, since = float("inf"), None, 0
        for ep in range(args.epochs + args.finetune_epochs):
            ft = ep >= args.epochs
            if ep == args.epochs:
                # fine-tuning starts from the joint phase's best state; its epochs must beat that state's ES score
                model.load_state_dict(best_state)
                since = 0
            elif ft and since >= args.patience:
                break
            elif not ft and since >= args.patience:
                continue  # joint phase stopped early: go on to the fine-tuning (if any)
            # Every window of the single-condition sets, a share of the six-condition ones: the targets are
            # FD001/FD003, FD002/FD004 keep the per-condition normalisation honest.
            xt, yt, perm = cmapss_common.epoch_windows(((d, *xtr_d[d]) for d in train_sets), gen, args.multi_fraction, ft)
            lr = cmapss_common.cosine_lr(args, ep, ft)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            tot = 0.0
            for i in range(0, len(perm), args.batch):
                idx = perm[i:i + args.batch]
                opt.zero_grad()
                out = model(xt[idx]).squeeze(1)
                loss = (nn.functional.mse_loss(out, yt[idx]) if args.loss == "mse"
                        else nn.functional.huber_loss(out, yt[idx], delta=10.0))
                loss.backward()
                opt.step()
                tot += nn.functional.mse_loss(out.detach(), yt[idx]).item() * len(idx)
            r = es_rmse(model)
            score = float(np.sqrt(np.mean([v ** 2 for v in r.values()])))
            print(f"member {k} epoch {ep + 1}/{args.epochs + args.finetune_epochs} lr {lr:.2e} train_rmse {np.sqrt(tot / len(perm)):.2f} "
                  f"es_rmse FD001 {r['FD001']:.2f} FD003 {r['FD003']:.2f} {time.time() - t0:.0f}s", flush=True)
            if score < best - 1e-3:
                best, since = score, 0
                best_state = {n: v.clone() for n, v in model.state_dict().items()}
            else:
                since += 1
                if since >= args.patience and not args.finetune_epochs:
                    break
        model.load_state_dict(best_state)
        model.eval()
        print(f"member {k}: best es score {best:.2f}", flush=True)
        return model

    def spec(item):
        # FILE[:CAP[:FIRST_N]]: members' output scale (their training cap) and how many of them to take
        parts = item.split(":")
        return parts[0], float(parts[1]) if len(parts) > 1 else cap, int(parts[2]) if len(parts) > 2 else None

    members = []
    for item in (args.from_onnx.split(",") if args.from_onnx else []):
        import onnx
        from onnx import numpy_helper
        path, mcap, first = spec(item)
        sd = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
              for i in onnx.load(path).graph.initializer if i.name.startswith("members.")}
        n_from = 1 + max(int(k.split(".")[1]) for k in sd)
        got = [RulCnn(mcap, window) for _ in range(n_from)]
        Ensemble(got).load_state_dict(sd)
        members += got[:first]
        print(f"{len(got[:first])} members (cap {mcap:.0f}) from {path}", flush=True)
    for item in (args.load_members.split(",") if args.load_members else []):
        path, mcap, first = spec(item)
        got = []
        for st in torch.load(path):
            m = RulCnn(mcap, window)
            m.load_state_dict(st)
            m.eval()
            got.append(m)
        members += got[:first]
        print(f"{len(got[:first])} members (cap {mcap:.0f}) from {path}", flush=True)
    if members:
        args.members = len(members)
    else:
        members = [train_member(k) for k in range(args.seed_offset, args.seed_offset + args.members)]
    if args.save_members:
        torch.save([m.state_dict() for m in members], args.save_members)
    model = Ensemble(members) if len(members) > 1 else members[0]
    calib = None
    if args.calibration:
        calib = json.load(open(args.calibration))
        model = Calibrated(model, calib["knots"], calib["coef"])
    gate_k = None
    if args.gate_joint:
        import onnx
        from onnx import numpy_helper
        # The sea-level condition: the one every FD001/FD003 row falls in (checked, not assumed).
        single = np.concatenate([data[d][u] for d in ("FD001", "FD003") for u in split[d][0]])
        ks = np.unique(condition_of(single[:, 2:5], centroids))
        if len(ks) != 1:
            raise SystemExit(f"FD001/FD003 rows fall in conditions {ks.tolist()}, not one")
        gate_k = int(ks[0])
        jpath, jcap, _ = spec(args.gate_joint)  # FILE[:CAP]: the joint members' training cap (150 for 1.3.0)
        jsd = {i.name[len("model."):]: torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(jpath).graph.initializer if i.name.startswith("model.members.")}
        n_joint = 1 + max(int(k.split(".")[1]) for k in jsd)
        joint_members = [RulCnn(jcap, window) for _ in range(n_joint)]
        Ensemble(joint_members).load_state_dict(jsd)
        jcal = json.load(open(args.gate_joint_calibration))
        joint = Calibrated(Ensemble(joint_members), jcal["knots"], jcal["coef"])
        model = Gated(model, joint)
        print(f"gated: specialist of {args.members} members, joint of {n_joint} from {jpath}, "
              f"gate condition {gate_k}", flush=True)
        # every window of every non-held-out FD002/FD004 unit must go to the joint model
        n_on = 0
        for d in ("FD002", "FD004"):
            for u in split[d][0]:
                on = condition_of(data[d][u][:, 2:5], centroids) == gate_k
                run = np.convolve(on.astype(int), np.ones(window, dtype=int), "valid")
                n_on += int((run == window).sum())
        print(f"FD002/FD004 training windows sent to the specialist: {n_on}", flush=True)
        es_x = {d: np.stack([last_window(features(r, centroids, mean, std, gate_k)) for r, _ in c])
                for d, c in es_cuts.items()}
        xes, yes = windows_of([data[d][u] for d in DATASETS for u in es[d]], gate_k)
    n_in = N_FEAT + (0 if gate_k is None else 1)
    model.eval()
    es_final = es_rmse(model)
    print("ensemble es_rmse", es_final, flush=True)
    if args.only_if_better:
        # Model selection on the early-stopping units only (never on the held-out ones).
        prev = json.load(open(os.path.join(HERE, "validation.json"))).get("es_rmse")
        score = lambda r: float(np.sqrt(np.mean([v ** 2 for v in r.values()])))  # noqa: E731
        if prev is not None and score(es_final) >= score(prev):
            print(f"ES score {score(es_final):.2f} not better than the committed model's {score(prev):.2f}: nothing written")
            return
    if args.dry_run:
        # Held-out figures are printed for every candidate (the card lists them all) but never used to choose.
        with torch.no_grad():
            for d in DATASETS:
                test = truncate_heldout(d, {u: data[d][u] for u in split[d][1]})
                wins = np.stack([last_window(features(rows, centroids, mean, std, gate_k)) for rows, _ in test])
                pr = np.clip(model(torch.from_numpy(wins)).squeeze(1).numpy(), 0, None).astype(np.float64)
                truth = np.array([r for _, r in test], dtype=np.float64)
                print(f"heldout {d} rmse {np.sqrt(np.mean((pr - truth) ** 2)):.2f} "
                      f"capped125 {np.sqrt(np.mean((pr - np.minimum(truth, RUL_CAP)) ** 2)):.2f}", flush=True)
        return

    model.eval()
    onnx_path = os.path.join(MODELS, "rul-cmapss.onnx")
    torch.onnx.export(model, torch.zeros(1, window, n_in), onnx_path, input_names=["window"],
                      output_names=["rul"], dynamic_axes={"window": {0: "batch"}, "rul": {0: "batch"}},
                      opset_version=13)

    def predict(x):
        with torch.no_grad():
            return np.clip(model(torch.from_numpy(np.asarray(x, dtype=np.float32))).squeeze(1).numpy(), 0, None)

    # Uncertainty: residual spread of all early-stopping windows, by predicted-RUL band.
    sigma, bias = residual_bands(predict(xes), yes)

    # Held-out test-format files and their figures.
    import make_heldout
    results = {}
    fixture_units = []
    for d in DATASETS:
        test = truncate_heldout(d, {u: data[d][u] for u in split[d][1]})
        make_heldout.write(d, test, os.path.join(HERE, "heldout"))
        wins = np.stack([last_window(features(rows, centroids, mean, std, gate_k)) for rows, _ in test])
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
        "description": f"Turbofan remaining useful life (cycles) from a {window}-cycle window, trained on C-MAPSS FD001-FD004",
        "inputs": [{
            "name": "window",
            "shape": [-1, window, n_in],
            "type": "float32",
            "features": [f"sensor{s}" for s in SENSORS] + ["cycle"] + ([] if gate_k is None else [f"inCondition{gate_k}"]),
            "units": ["as in C-MAPSS"] * len(SENSORS) + ["cycles"] + ([] if gate_k is None else ["flag"]),
            "normalisation": {
                "type": "per-condition-zscore",
                "settingScale": SETTING_SCALE.tolist(),
                "conditions": centroids.tolist(),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "cycleScale": CYCLE_SCALE,
                "window": window,
                "padding": "repeat-first-row",
            },
        }],
        "outputs": [{
            "name": "rul", "shape": [-1, 1], "type": "float32", "unit": "cycles", "cap": cap,
            "uncertainty": {"type": "gaussian-residual", "bias": bias,
                            "bandUpper": UNCERTAINTY_BANDS[:-1] + [None], "sigma": sigma},
        }],
    }
    man_path = os.path.join(MODELS, "manifest.json")
    manifest = {"schemaVersion": 1, "models": []}
    if os.path.exists(man_path):
        manifest = json.load(open(man_path))
    # Replace the entry in place (the other models' entries and their order stay as they are).
    names = [m["name"] for m in manifest["models"]]
    if entry["name"] in names:
        manifest["models"][names.index(entry["name"])] = entry
    else:
        manifest["models"].append(entry)
    with open(man_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(man_path + ".tmp", man_path)

    val = {"version": VERSION, "params": sum(p.numel() for p in model.parameters()), "members": args.members, "cap": cap,
           "window": window,
           "gate": None if gate_k is None else {"condition": gate_k, "joint": os.path.basename(jpath),
                                               "joint_members": n_joint, "joint_calibration": jcal},
           "max_rul": args.max_rul, "loss": args.loss, "calibration": calib,
           "es_rmse": es_final, "onnx_bytes": len(onnx_bytes), "sha256": sha, "epochs": args.epochs,
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
