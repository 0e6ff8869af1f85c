#!/usr/bin/python3
"""Write test-format C-MAPSS files from the held-out (validation) training units.

NASA's test/RUL files are not used. Each held-out unit is truncated 5 times at seeded random
points (true RUL uniform in [1, min(150, len-1)]), renumbered 1..N, and written as
heldout/test_FDxxx.txt + heldout/RUL_FDxxx.txt in NASA's layout (one RUL per line).
Usage: /usr/bin/python3 models/rul/make_heldout.py [--data DIR]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cmapss_common import DATASETS, load, split_units, truncate_heldout, units  # noqa: E402


def write(dataset, test, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"test_{dataset}.txt"), "w") as f:
        for rows, _ in test:
            for r in rows:
                f.write(" ".join(f"{int(v)}" if i < 2 else f"{v:.4f}".rstrip("0").rstrip(".")
                                 if i < 5 else f"{v:g}" for i, v in enumerate(r)) + "\n")
    with open(os.path.join(out_dir, f"RUL_{dataset}.txt"), "w") as f:
        for _, rul in test:
            f.write(f"{rul}\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "..", "shared", "data", "cmapss"))
    ap.add_argument("--out", default=os.path.join(here, "heldout"))
    args = ap.parse_args()
    for d in DATASETS:
        u = units(load(os.path.join(args.data, f"train_{d}.txt")))
        _, val = split_units(d, u.keys())
        test = truncate_heldout(d, {k: u[k] for k in val})
        write(d, test, args.out)
        print(d, len(test), "units")


if __name__ == "__main__":
    main()
