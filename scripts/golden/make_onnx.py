#!/usr/bin/env python3
"""Train scikit-learn models on the red wine data, export them to ONNX with skl2onnx,
and score every row with onnxruntime to produce golden expected outputs.

Outputs (relative to the repository root):
  data/onnx/<name>.onnx      the ONNX model
  data/golden/<name>.csv     inputs + `expected:<output>[<i>]` columns, one row per wine row

Export options are the ones tract-onnx evaluates: `zipmap=False` (probabilities as a
plain [N, C] float tensor instead of a sequence of maps) and only operators tract
implements (TreeEnsembleClassifier, LinearClassifier, LinearRegressor, Concat).

The graph has one [N, 11] float input; the record field names it reads are put in the
model's metadata_props `ks.input_fields` (comma separated), which ks-models reads
(skl2onnx would sanitize names such as `fixed acidity` if they were input names).

CSV format (as the other files in data/golden/): comma separated; header is the input
field names, then `expected:<output>[<i>]` for every element of every graph output, in
graph output order. Inputs are the data set's values; outputs the Python repr of onnxruntime's
float32/int64 values (exact).

Usage:  python3 scripts/golden/make_onnx.py
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "winequality_red.csv"
ONNX_DIR = ROOT / "data" / "onnx"
GOLDEN_DIR = ROOT / "data" / "golden"

FEATURES = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar",
            "chlorides", "free sulfur dioxide", "total sulfur dioxide", "density",
            "pH", "sulphates", "alcohol"]
TARGET = "quality"
SEED = 42
OPSET = {"": 15, "ai.onnx.ml": 3}


def load_wine():
    df = pd.read_csv(DATA, sep=";", header=None, names=FEATURES + [TARGET])
    return df[FEATURES].astype("float64"), df[TARGET].astype("int64")


MODELS = {
    # name: (estimator, classifier?)
    "onnx_decision_tree_classifier": (
        lambda: DecisionTreeClassifier(max_depth=6, random_state=SEED), True),
    "onnx_rf_classifier": (
        lambda: RandomForestClassifier(n_estimators=15, max_depth=7, random_state=SEED), True),
    "onnx_logreg": (lambda: LogisticRegression(max_iter=5000), True),
    "onnx_linear_regression": (lambda: LinearRegression(), False),
}


def fmt(v):
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    return repr(int(v))


def build(name, make, classifier, X, y):
    est = make()
    x = X.to_numpy(dtype=np.float32)
    est.fit(x, y.to_numpy())
    inputs = [("input", FloatTensorType([None, len(FEATURES)]))]
    options = {id(est): {"zipmap": False}} if classifier else None
    model = convert_sklearn(est, initial_types=inputs, target_opset=OPSET, options=options)
    entry = model.metadata_props.add()
    entry.key = "ks.input_fields"
    entry.value = ",".join(FEATURES)
    onnx.checker.check_model(model)
    ONNX_DIR.mkdir(parents=True, exist_ok=True)
    path = ONNX_DIR / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input": x})
    names = [o.name for o in sess.get_outputs()]
    columns, blocks = [], []
    for n, o in zip(names, outs):
        o = np.asarray(o).reshape(len(x), -1)
        columns += [f"{n}[{i}]" for i in range(o.shape[1])]
        blocks.append(o)
    with open(GOLDEN_DIR / f"{name}.csv", "w", encoding="utf-8") as fh:
        fh.write(",".join(FEATURES + ["expected:" + c for c in columns]) + "\n")
        for r in range(len(x)):
            cells = [fmt(v) for v in X.iloc[r]]
            for b in blocks:
                cells += [fmt(v) for v in b[r]]
            fh.write(",".join(cells) + "\n")
    if classifier:
        agree = float(np.mean(outs[0].reshape(-1) == est.predict(x)))
        print(f"{name}: outputs {names}, labels agree with sklearn on {agree:.4f}")
    else:
        diff = float(np.max(np.abs(outs[0].reshape(-1) - est.predict(x))))
        print(f"{name}: outputs {names}, max |onnxruntime - sklearn| = {diff:.3g}")


def main():
    X, y = load_wine()
    for name, (make, classifier) in MODELS.items():
        build(name, make, classifier, X, y)


if __name__ == "__main__":
    main()
