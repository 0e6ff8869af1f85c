#!/usr/bin/python3
"""rul-cmapss 1.4.0+: the 10 CNN members of 1.3.0 (not retrained) blended with a gradient-boosting member.

Graph: the 1.3.0 graph's nodes and initialisers up to the members' mean, then
  blend = w * members' mean + (1 - w) * GBM(features(window)),
  features = cmapss_common.gbm_features in ONNX (Transpose + MatMul with gbm_linear, ReduceMin/Max, Concat, Reshape;
             for the "x" kind of cv_gbm.py --features also the variances, Mul/MatMul/Sub),
  GBM = ai.onnx.ml TreeEnsembleRegressor (sklearn's trees: x <= threshold goes left; base = init, weights = lr * leaf),
then the 1.3.0 output-map nodes with the map refit on the blend (calibrate.py --blend --w --out). Addendum 7:
--gbm A.pkl,B.pkl blends the mean of several tree members (each with its own features: "xc" computes centred
variances with Slice/ReduceMean/Sub/Mul), --fp16 stores the CNN members' weights as float16 behind Casts (the
reference then rounds them the same way); without these options 1.5.0 rebuilds byte for byte. The input stays
`window` [N,50,15]: C# needs no change. Python reference: the members in torch (weights read from the 1.3.0 graph) +
sklearn's predict + calibrate.apply; the fixture (rul-fixture.json) gets the reference's output for every prefix
of its units so the C# test checks ONNX Runtime against it.

Usage: /usr/bin/python3 models/rul/export_blend.py --cnn /tmp/rul-cmapss-1.3.0.onnx --gbm /tmp/gbm_all.pkl \
         --calibration models/rul/calibration.json --out models/rul-cmapss.onnx --manifest models/manifest.json \
         --fixture tests/EdgeTwin.Twin.Tests/Models/Fixtures/rul-fixture.json
"""
import argparse
import hashlib
import json
import os
import pickle
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calibrate  # noqa: E402
import cmapss_common  # noqa: E402
from cmapss_common import GBM_VARS, features, gbm_features, gbm_linear, gbm_stats, gbm_var_means, last_window  # noqa: E402
from train_rul import Ensemble, RulCnn  # noqa: E402


def split_threshold(th, exact):
    """sklearn compares the float32 feature with a float64 threshold; the ONNX attribute is float32. exact: the largest
    float32 <= th, so that x <= t gives sklearn's answer for every float32 x (rounding to nearest flipped one split of
    gbm-xc on a fixture window by 0.17 cycles, addendum 7); off rebuilds 1.4.0 / 1.5.0 byte for byte."""
    t = np.float32(th)
    if exact and t > th:
        t = np.nextafter(t, np.float32(-np.inf))
    return float(t) if exact else float(th)


def tree_ensemble_attrs(gbm, exact=False):
    """sklearn GradientBoostingRegressor -> TreeEnsembleRegressor attributes (one target, SUM)."""
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "target_treeids", "target_nodeids", "target_ids",
                         "target_weights")}
    for tid, est in enumerate(gbm.estimators_[:, 0]):
        t = est.tree_
        for nid in range(t.node_count):
            leaf = t.children_left[nid] == -1
            a["nodes_treeids"].append(tid)
            a["nodes_nodeids"].append(nid)
            a["nodes_featureids"].append(0 if leaf else int(t.feature[nid]))
            a["nodes_values"].append(0.0 if leaf else split_threshold(t.threshold[nid], exact))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(t.children_left[nid]))
            a["nodes_falsenodeids"].append(0 if leaf else int(t.children_right[nid]))
            if leaf:
                a["target_treeids"].append(tid)
                a["target_nodeids"].append(nid)
                a["target_ids"].append(0)
                a["target_weights"].append(float(gbm.learning_rate * t.value[nid, 0, 0]))
    init = float(np.ravel(gbm.init_.constant_)[0]) if hasattr(gbm.init_, "constant_") else float(gbm.init_.predict(np.zeros((1, gbm.n_features_in_)))[0])
    return a, init


def to_fp16(g):
    """Store the CNN members' float32 initialisers as float16, each behind a Cast to float32 under its old name
    (addendum 7: frees ~0.74 MB; ONNX Runtime folds a Cast of an initialiser at session start)."""
    casts = []
    for i in [i for i in g.initializer if i.name.startswith("model.members.") and i.data_type == TensorProto.FLOAT]:
        a = numpy_helper.to_array(i)
        g.initializer.remove(i)
        g.initializer.append(numpy_helper.from_array(a.astype(np.float16), i.name + "_fp16"))
        casts.append(helper.make_node("Cast", [i.name + "_fp16"], [i.name], to=TensorProto.FLOAT, name="fp16_" + i.name))
    for k, n in enumerate(casts):
        g.node.insert(k, n)
    return len(casts)


def feature_nodes(win, window, kind, n_feat, sfx):
    """cmapss_common.gbm_features(window, kind) in ONNX as f"gbm_x{sfx}" [N, n_feat]: (initialisers, nodes)."""
    inits = [numpy_helper.from_array(gbm_linear(window, kind), f"gbm_linear{sfx}"),
             numpy_helper.from_array(np.array([-1, n_feat], dtype=np.int64), f"gbm_shape{sfx}")]
    nodes = [
        helper.make_node("Transpose", [win], [f"gbm_wt{sfx}"], perm=[0, 2, 1], name=f"gbm_transpose{sfx}"),
        helper.make_node("MatMul", [f"gbm_wt{sfx}", f"gbm_linear{sfx}"], [f"gbm_lin{sfx}"],
                         name=f"gbm_linear_stats{sfx}"),  # [N,C,L]
    ]
    stats = [f"gbm_lin{sfx}"]
    if kind == "x":
        # variances over the last GBM_VARS rows: E[x^2] - E[x]^2, as cmapss_common.gbm_features computes them
        inits.append(numpy_helper.from_array(gbm_var_means(window), f"gbm_var_means{sfx}"))
        nodes += [
            helper.make_node("MatMul", [f"gbm_wt{sfx}", f"gbm_var_means{sfx}"], [f"gbm_m1{sfx}"], name=f"gbm_var_m1{sfx}"),
            helper.make_node("Mul", [f"gbm_wt{sfx}", f"gbm_wt{sfx}"], [f"gbm_wt2{sfx}"], name=f"gbm_square{sfx}"),
            helper.make_node("MatMul", [f"gbm_wt2{sfx}", f"gbm_var_means{sfx}"], [f"gbm_m2{sfx}"], name=f"gbm_var_m2{sfx}"),
            helper.make_node("Mul", [f"gbm_m1{sfx}", f"gbm_m1{sfx}"], [f"gbm_m1sq{sfx}"], name=f"gbm_var_m1sq{sfx}"),
            helper.make_node("Sub", [f"gbm_m2{sfx}", f"gbm_m1sq{sfx}"], [f"gbm_var{sfx}"], name=f"gbm_var{sfx}"),
        ]
        stats.append(f"gbm_var{sfx}")
    elif kind == "xc":
        # centred variances (cmapss_common.centred_var): the last n rows minus their mean, squared, averaged
        for n in GBM_VARS:
            t = f"{sfx}_{n}"
            inits += [numpy_helper.from_array(np.array([window - n], dtype=np.int64), f"gbm_vstart{t}"),
                      numpy_helper.from_array(np.array([window], dtype=np.int64), f"gbm_vend{t}"),
                      numpy_helper.from_array(np.array([2], dtype=np.int64), f"gbm_vaxis{t}")]
            nodes += [
                helper.make_node("Slice", [f"gbm_wt{sfx}", f"gbm_vstart{t}", f"gbm_vend{t}", f"gbm_vaxis{t}"],
                                 [f"gbm_last{t}"], name=f"gbm_last{t}"),  # [N,C,n]
                helper.make_node("ReduceMean", [f"gbm_last{t}"], [f"gbm_mu{t}"], axes=[2], keepdims=1, name=f"gbm_mu{t}"),
                helper.make_node("Sub", [f"gbm_last{t}", f"gbm_mu{t}"], [f"gbm_dev{t}"], name=f"gbm_dev{t}"),
                helper.make_node("Mul", [f"gbm_dev{t}", f"gbm_dev{t}"], [f"gbm_dev2{t}"], name=f"gbm_dev2{t}"),
                helper.make_node("ReduceMean", [f"gbm_dev2{t}"], [f"gbm_cvar{t}"], axes=[2], keepdims=1,
                                 name=f"gbm_cvar{t}"),  # [N,C,1]
            ]
            stats.append(f"gbm_cvar{t}")
    nodes += [
        helper.make_node("ReduceMin", [win], [f"gbm_min_r{sfx}"], axes=[1], keepdims=1, name=f"gbm_min{sfx}"),
        helper.make_node("Transpose", [f"gbm_min_r{sfx}"], [f"gbm_min_c{sfx}"], perm=[0, 2, 1], name=f"gbm_min_t{sfx}"),
        helper.make_node("ReduceMax", [win], [f"gbm_max_r{sfx}"], axes=[1], keepdims=1, name=f"gbm_max{sfx}"),
        helper.make_node("Transpose", [f"gbm_max_r{sfx}"], [f"gbm_max_c{sfx}"], perm=[0, 2, 1], name=f"gbm_max_t{sfx}"),
        helper.make_node("Concat", stats + [f"gbm_min_c{sfx}", f"gbm_max_c{sfx}"], [f"gbm_stats{sfx}"], axis=2,
                         name=f"gbm_concat{sfx}"),
        helper.make_node("Reshape", [f"gbm_stats{sfx}", f"gbm_shape{sfx}"], [f"gbm_x{sfx}"],
                         name=f"gbm_flatten{sfx}"),  # c*len(stats)+s
    ]
    return inits, nodes


def build(cnn_path, gbms, w, calib, fp16=False, exact=False):
    """gbms: [(sklearn GBM, feature kind)]; several are averaged (addendum 7's two-ens). One member in the base or
    "x" kind without fp16 gives 1.4.0's / 1.5.0's graph byte for byte."""
    m = onnx.load(cnn_path)
    g = m.graph
    mean_out = [n.output[0] for n in g.node if n.op_type == "ReduceMean"]
    if len(mean_out) != 1:
        raise SystemExit(f"{cnn_path}: expected one ReduceMean (the members' mean), found {len(mean_out)}")
    mean_out = mean_out[0]
    users = [n for n in g.node if mean_out in n.input]
    if len(users) != 1 or users[0].op_type != "Sub":
        raise SystemExit(f"{cnn_path}: the members' mean should feed the output map's Sub only")
    win = g.input[0].name
    window, cols = (d.dim_value for d in g.input[0].type.tensor_type.shape.dim[1:])
    inits, nodes, outs, extra = [], [], [], []
    for k, (gbm, kind) in enumerate(gbms):
        sfx = "" if k == 0 else f"_{k}"
        n_feat = cols * len(gbm_stats(kind))
        if gbm.n_features_in_ != n_feat:
            raise SystemExit(f"GBM {k} has {gbm.n_features_in_} features, the window gives {n_feat}")
        fi, fn = feature_nodes(win, window, kind, n_feat, sfx)
        inits += fi[:2]
        extra += fi[2:]  # after the blend weights: 1.5.0's initialiser order
        attrs, init = tree_ensemble_attrs(gbm, exact)
        nodes += fn + [helper.make_node("TreeEnsembleRegressor", [f"gbm_x{sfx}"], [f"gbm_y{sfx}"], domain="ai.onnx.ml",
                                        name=f"gbm_trees{sfx}", n_targets=1, aggregate_function="SUM",
                                        post_transform="NONE", base_values=[init], **attrs)]
        outs.append(f"gbm_y{sfx}")
    if len(outs) > 1:  # the members' mean: Sum, then (1 - w) / count in the blend weight
        nodes.append(helper.make_node("Sum", outs, ["gbm_y_sum"], name="gbm_sum"))
    inits += [numpy_helper.from_array(np.array([w], dtype=np.float32), "blend_w_cnn"),
              numpy_helper.from_array(np.array([(1.0 - w) / len(outs)], dtype=np.float32), "blend_w_gbm")]
    g.initializer.extend(inits + extra)
    nodes += [
        helper.make_node("Mul", [mean_out, "blend_w_cnn"], ["blend_cnn"], name="blend_cnn"),
        helper.make_node("Mul", [outs[0] if len(outs) == 1 else "gbm_y_sum", "blend_w_gbm"], ["blend_gbm"],
                         name="blend_gbm"),
        helper.make_node("Add", ["blend_cnn", "blend_gbm"], ["blend"], name="blend"),
    ]
    # insert before the map's Sub so the node list stays topologically sorted
    pos = list(g.node).index(users[0])
    for i, n in enumerate(nodes):
        g.node.insert(pos + i, n)
    for i, name in enumerate(users[0].input):
        if name == mean_out:
            users[0].input[i] = "blend"
    # the output map refit on the blend (same knots as the 1.3.0 map; hinge widths unchanged)
    knots = np.array(calib["knots"], dtype=np.float32)
    old = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    if not np.allclose(old["lo"], knots):
        raise SystemExit("the 1.3.0 map's knots differ from the calibration's")
    for i in g.initializer:
        if i.name == "c0":
            i.CopyFrom(numpy_helper.from_array(np.array([calib["coef"][0]], dtype=np.float32), "c0"))
        elif i.name == "c":
            i.CopyFrom(numpy_helper.from_array(np.array(calib["coef"][1:], dtype=np.float32), "c"))
    if old["c"].shape != (len(calib["coef"]) - 1,):
        raise SystemExit("map coefficient count differs")
    if fp16:
        to_fp16(g)
    m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    m.ir_version = 8
    m.producer_name = "edgetwin export_blend.py"
    onnx.checker.check_model(m)
    return m


def reference(cnn_path, gbms, w, calib, x, fp16=False):
    """The same function in torch + sklearn + numpy (float64 map): x [N,W,C] float32 -> [N]. fp16: the members'
    weights rounded to float16 and back, as the graph's Casts give them."""
    sd = {i.name[len("model."):]: torch.from_numpy(numpy_helper.to_array(i).copy())
          for i in onnx.load(cnn_path).graph.initializer if i.name.startswith("model.members.")}
    if fp16:
        sd = {k: v.half().float() if v.dtype == torch.float32 else v for k, v in sd.items()}
    n = 1 + max(int(k.split(".")[1]) for k in sd)
    window = x.shape[1]
    ens = Ensemble([RulCnn(150.0, window) for _ in range(n)])
    ens.load_state_dict(sd)
    ens.eval()
    with torch.no_grad():
        cnn = ens(torch.from_numpy(x)).squeeze(1).numpy().astype(np.float64)
    trees = np.mean([gbm.predict(gbm_features(x, kind)) for gbm, kind in gbms], axis=0)
    p = w * cnn + (1 - w) * trees
    return calibrate.apply(p, calib["knots"], np.array(calib["coef"]))


def update_manifest(path, onnx_path, version, calib, in_sample=None, in_sample_note=None):
    """The rul-cmapss entry: version, sha256, the uncertainty from the blend's cross-fitted OOF residuals, and
    inSample: the held-out test files of in_sample (a directory) by sha256 when a member was trained on them
    (cv_gbm.py --include-heldout); without it the key is removed, so an earlier model's note never sticks to a new one."""
    man = json.load(open(path))
    e = next(x for x in man["models"] if x["name"] == "rul-cmapss")
    e["version"] = version
    e["sha256"] = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    e.pop("inSample", None)
    if in_sample:
        names = sorted(n for n in os.listdir(in_sample) if n.startswith("test_") and n.endswith(".txt"))
        e["inSample"] = {"note": in_sample_note or (f"{version} was trained on these held-out units (models/rul-cmapss.md): "
                                                    "its figures on them are in-sample, not an estimate"),
                         "files": [{"name": f"rul/heldout/{n}",
                                    "sha256": hashlib.sha256(open(os.path.join(in_sample, n), "rb").read()).hexdigest()}
                                   for n in names]}
    e["description"] = ("Turbofan remaining useful life (cycles) from a 50-cycle window: CNN ensemble blended with "
                        "gradient-boosted trees on window features, trained on C-MAPSS FD001-FD004")
    r = calib["residuals_crossfit"]
    e["outputs"][0]["uncertainty"] = {"type": "gaussian-residual", "bias": r["bias"],
                                      "bandUpper": r["band_upper"] + [None], "sigma": r["sigma"]}
    with open(path, "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    return e


def update_fixture(path, entry, predict):
    """rul-fixture.json: the same units, the new sha256, the reference's output on each unit and on every prefix."""
    fx = json.load(open(path))
    norm = entry["inputs"][0]["normalisation"]
    cen, mean, std = (np.array(norm[k]) for k in ("conditions", "mean", "std"))
    cmapss_common.WINDOW = norm["window"]
    worst = 0.0
    for u in fx["units"]:
        rows = np.array(u["rows"])
        f = features(rows, cen, mean, std)
        wins = np.stack([last_window(f[: n + 1]) for n in range(len(f))]).astype(np.float32)
        worst = max(worst, float(np.abs(wins[-1] - np.array(u["window"], dtype=np.float32)).max()))
        pred = predict(wins)
        u["predicted_rul"] = float(pred[-1])
        u["prefix_rul"] = [float(v) for v in pred]
    if worst > 1e-5:
        raise SystemExit(f"fixture windows differ from the committed ones by {worst}")
    fx["sha256"] = entry["sha256"]
    json.dump(fx, open(path, "w"))
    return sum(len(u["rows"]) for u in fx["units"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnn", required=True, help="the 1.3.0 graph (git show 1.3.0:models/rul-cmapss.onnx)")
    ap.add_argument("--gbm", required=True, help="cv_gbm.py --fit-all pickle; several, comma-separated: their mean")
    ap.add_argument("--calibration", required=True, help="calibrate.py --blend ... --w W --out JSON (holds w)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", default="1.5.0")
    ap.add_argument("--fp16", action="store_true", help="CNN members' weights as float16 initialisers (addendum 7)")
    ap.add_argument("--exact-thresholds", action="store_true",
                    help="split thresholds rounded down to float32 (split_threshold), exact for float32 features")
    ap.add_argument("--manifest", default=None, help="update the rul-cmapss entry of this manifest")
    ap.add_argument("--fixture", default=None, help="rewrite this rul-fixture.json's outputs with the reference")
    ap.add_argument("--in-sample", default=None, metavar="HELDOUT_DIR",
                    help="a member was trained on these held-out files (cv_gbm.py --include-heldout): list them in the "
                         "entry's inSample so bench cmapss says its figures on them are in-sample")
    ap.add_argument("--in-sample-note", default=None, help="the inSample note (say where the honest figures are)")
    args = ap.parse_args()
    calib = json.load(open(args.calibration))
    gbms = []
    for path in args.gbm.split(","):
        saved = pickle.load(open(path, "rb"))
        gbms.append((saved["model"], saved["args"].get("features", "base")))  # cv_gbm.py --features
    m = build(args.cnn, gbms, calib["w"], calib, args.fp16, args.exact_thresholds)
    onnx.save(m, args.out)
    print(f"{args.out}: {os.path.getsize(args.out)} bytes, trees {[len(g.estimators_) for g, _ in gbms]}, "
          f"features {[k for _, k in gbms]}, w = {calib['w']}, fp16 {args.fp16}, exact thresholds {args.exact_thresholds}")
    def predict(x):
        return reference(args.cnn, gbms, calib["w"], calib, x, args.fp16)
    if args.manifest:
        entry = update_manifest(args.manifest, args.out, args.version, calib, args.in_sample, args.in_sample_note)
        print(f"{args.manifest}: rul-cmapss {entry['version']} sha256 {entry['sha256']}")
        if args.fixture:
            print(f"{args.fixture}: {update_fixture(args.fixture, entry, predict)} prefix outputs")


if __name__ == "__main__":
    main()
