#!/usr/bin/python3
"""K-fold cross-validation of a RUL training recipe over the NON-held-out training units.

Selection criterion for rul-cmapss (the held-out units of validation.json are never loaded here).
Per data set the non-held-out units are split into K seeded folds; one member is trained on the other
folds (fixed epochs, cosine schedule, no early stopping) and scored on the fold's units with the
*expected* test-cut error: every cut a test file could contain (true RUL 1..min(150, length-1), each
equally likely per unit, as make_heldout.py draws them) instead of 5 random cuts, which removes the
cut-sampling noise. Prints per data set the CV RMSE (uncapped truth) and writes the out-of-fold
predictions (for the output calibration) to --oof.

Usage: nice /usr/bin/python3 models/rul/cv_rul.py --cap 130 --folds 5 --epochs 12 [--oof FILE.npz]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cmapss_common  # noqa: E402
from cmapss_common import DATASETS, SEED  # noqa: E402
from train_rul import RulCnn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "cmapss"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only-folds", type=int, default=None, help="run only the first N folds (quicker, noisier)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--cap", type=float, default=130.0)
    ap.add_argument("--target", choices=["capped", "cut"], default="capped",
                    help="capped: every window, target min(RUL, cap); cut: only windows a test cut can end on "
                         "(RUL <= 150), target the uncapped RUL (minimises the expected test-cut MSE)")
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--multi-fraction", type=float, default=0.3)
    ap.add_argument("--single-only", action="store_true", help="train on FD001/FD003 only")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--finetune-epochs", type=int, default=0,
                    help="after --epochs, this many more on FD001/FD003 windows only (a single-condition specialist "
                         "fine-tuned from the joint member)")
    ap.add_argument("--finetune-lr", type=float, default=5e-4)
    ap.add_argument("--oof-joint", default=None,
                    help="with --finetune-epochs: out-of-fold predictions of the joint phase (before fine-tuning)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--oof", default=None, help="write out-of-fold predictions here (.npz)")
    ap.add_argument("--name", default="")
    ap.add_argument("--seed-offset", type=int, default=0, help="another member per fold (same folds, other seed)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    cv = cmapss_common.CvData(args.data, args.window, args.folds)
    print(f"prep {time.time() - t0:.0f}s", flush=True)

    def evaluate(model, k, store, label):
        """Scores fold k's units with model; appends the out-of-fold predictions to store."""
        model.eval()
        msg = []
        with torch.no_grad():
            for d in DATASETS:
                fold_sq = []
                for u in cv.folds[d][k]:
                    x = cv.win[(d, u)][cv.test_cuts(d, u)]
                    fold_sq.append(store.add(cv, d, u, np.clip(model(torch.from_numpy(x)).squeeze(1).numpy(), 0, None)))
                msg.append(f"{d} {np.sqrt(np.mean(fold_sq)):.2f}")
        print(f"fold {k}{label}: " + " ".join(msg) + f" {time.time() - t0:.0f}s", flush=True)

    final, joint_phase = cmapss_common.CvStore(), cmapss_common.CvStore()
    n_run = args.only_folds or args.folds
    gen = torch.Generator().manual_seed(SEED + args.seed_offset)
    for k in range(n_run):
        per_d = {}
        for d in DATASETS:
            if args.single_only and d in ("FD002", "FD004"):
                continue
            per_d[d] = cv.train_xy(cv.train_keys(d, k), args.target, args.cap)
        torch.manual_seed(SEED + 101 * k + 7919 * args.seed_offset)
        model = RulCnn(args.cap, args.window)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        for ep in range(args.epochs + args.finetune_epochs):
            ft = ep >= args.epochs
            if ep == args.epochs:
                # the joint member before fine-tuning: the same member as a run without --finetune-epochs
                evaluate(model, k, joint_phase, " (joint phase)")
            xt, yt, perm = cmapss_common.epoch_windows(((d, x, y) for d, (x, y) in per_d.items()), gen, args.multi_fraction, ft)
            lr = cmapss_common.cosine_lr(args, ep, ft)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            for i in range(0, len(perm), args.batch):
                idx = perm[i:i + args.batch]
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(xt[idx]).squeeze(1), yt[idx])
                loss.backward()
                opt.step()
        evaluate(model, k, final, "")
    final.report(args.name, args.oof, n_run, args)
    if args.finetune_epochs:
        joint_phase.report(args.name + " (joint phase)", args.oof_joint, n_run, args)

if __name__ == "__main__":
    main()
