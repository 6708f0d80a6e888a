#!/usr/bin/env python3
"""Train reference scikit-learn models on the red wine data, export them to PMML
with sklearn2pmml, and score them with JPMML-Evaluator (PyPI `jpmml_evaluator`,
JPype backend) to produce golden expected outputs.

Outputs (relative to the repository root):
  data/sklearn/<name>.pmml   the PMML model
  data/golden/<name>.csv     inputs + `expected:<field>` columns, one row per wine row

CSV format (same as the other files in data/golden/): comma separated; header is
the model's input field names (as named in the PMML, in data-set column order)
followed by `expected:<result field>` for every column JPMML-Evaluator's
evaluateAll returns (target first, then output fields such as probability(5));
numbers are written as Python repr (shortest round-trip); missing values are
empty cells.

Usage:  python3 scripts/golden/make_models.py [--only NAME[,NAME...]]
"""

import argparse
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import KBinsDiscretizer
from lightgbm import LGBMClassifier, LGBMRegressor
from xgboost import XGBClassifier, XGBRegressor

from sklearn2pmml import sklearn2pmml
from sklearn2pmml.pipeline import PMMLPipeline
from sklearn2pmml.preprocessing import ExpressionTransformer

from jpmml_evaluator import make_evaluator

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "winequality_red.csv"
PMML_DIR = ROOT / "data" / "sklearn"
GOLDEN_DIR = ROOT / "data" / "golden"

FEATURES = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar",
            "chlorides", "free sulfur dioxide", "total sulfur dioxide", "density",
            "pH", "sulphates", "alcohol"]
TARGET = "quality"
SEED = 42

# Fraction of input cells blanked in the scoring rows of the *_missing models.
MISSING_FRACTION = 0.1


def load_wine():
    df = pd.read_csv(DATA, sep=";", header=None, names=FEATURES + [TARGET])
    df[FEATURES] = df[FEATURES].astype("float64")
    df[TARGET] = df[TARGET].astype("int64")
    return df


def alcohol_band(alcohol):
    """Derived string column: low (< 10), mid (10 <= a < 11.5), high (>= 11.5)."""
    return np.where(alcohol < 10.0, "low", np.where(alcohol < 11.5, "mid", "high"))


def with_band(X):
    X = X.copy()
    # place the string column right after "alcohol" (i.e. last)
    X["alcohol_band"] = alcohol_band(X["alcohol"].to_numpy())
    return X


def blank_cells(X, seed):
    """Return a copy of X with MISSING_FRACTION of the numeric cells set to NaN
    (deterministic). Row 0 is kept complete so there is always a full row."""
    rng = np.random.RandomState(seed)
    X = X.copy()
    mask = rng.rand(*X.shape) < MISSING_FRACTION
    mask[0, :] = False
    X = X.mask(mask)
    return X


# ---------------------------------------------------------------------------
# Model definitions. Each returns (pipeline, X_train, y_train, X_score).
# ---------------------------------------------------------------------------

def m_gbm_classifier(df):
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("classifier", GradientBoostingClassifier(
        n_estimators=30, max_depth=3, learning_rate=0.1, random_state=SEED))])
    return p, X, y, X


def m_gbm_regressor(df):
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("regressor", GradientBoostingRegressor(
        n_estimators=50, max_depth=4, learning_rate=0.1, random_state=SEED))])
    return p, X, y, X


def m_rf_classifier(df):
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("classifier", RandomForestClassifier(
        n_estimators=20, max_depth=6, random_state=SEED))])
    return p, X, y, X


def m_rf_regressor(df):
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("regressor", RandomForestRegressor(
        n_estimators=20, max_depth=6, random_state=SEED))])
    return p, X, y, X


def m_logreg_multinomial(df):
    X, y = df[FEATURES], df[TARGET]
    # lbfgs + >2 classes => multinomial (softmax) in scikit-learn >= 1.5
    p = PMMLPipeline([("scaler", StandardScaler()),
                      ("classifier", LogisticRegression(max_iter=2000))])
    return p, X, y, X


def m_mlp_classifier(df):
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("scaler", StandardScaler()),
                      ("classifier", MLPClassifier(hidden_layer_sizes=(16, 8), activation="relu",
                                                   max_iter=1000, random_state=SEED))])
    return p, X, y, X


def m_mlp_regressor(df):
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("scaler", MinMaxScaler()),
                      ("regressor", MLPRegressor(hidden_layer_sizes=(16,), activation="tanh",
                                                 max_iter=2000, random_state=SEED))])
    return p, X, y, X


def m_decision_tree_classifier(df):
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("classifier", DecisionTreeClassifier(max_depth=6, random_state=SEED))])
    return p, X, y, X


def m_linear_regression(df):
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("regressor", LinearRegression())])
    return p, X, y, X


def m_categorical_logreg(df):
    """String input "alcohol_band" one-hot encoded next to scaled numeric inputs."""
    X, y = with_band(df[FEATURES]), df[TARGET]
    ct = ColumnTransformer([
        ("num", StandardScaler(), FEATURES),
        ("cat", OneHotEncoder(), ["alcohol_band"]),
    ])
    p = PMMLPipeline([("mapper", ct),
                      ("classifier", LogisticRegression(max_iter=2000))])
    return p, X, y, X


def m_categorical_tree_regressor(df):
    """String input "alcohol_band" one-hot encoded; tree splits on string equality."""
    X, y = with_band(df[FEATURES]), df[TARGET].astype("float64")
    ct = ColumnTransformer([
        ("cat", OneHotEncoder(), ["alcohol_band"]),
        ("num", "passthrough", [f for f in FEATURES if f != "alcohol"]),
    ])
    p = PMMLPipeline([("mapper", ct),
                      ("regressor", DecisionTreeRegressor(max_depth=5, random_state=SEED))])
    return p, X, y, X


def m_categorical_mlp_classifier(df):
    """String input one-hot encoded into an MLP (NeuralInput with NormDiscrete)."""
    X, y = with_band(df[FEATURES]), df[TARGET]
    ct = ColumnTransformer([
        ("num", StandardScaler(), FEATURES),
        ("cat", OneHotEncoder(), ["alcohol_band"]),
    ])
    p = PMMLPipeline([("mapper", ct),
                      ("classifier", MLPClassifier(hidden_layer_sizes=(8,), activation="logistic",
                                                   max_iter=2000, random_state=SEED))])
    return p, X, y, X


def m_hgb_classifier_categorical_missing(df):
    """HistGradientBoostingClassifier with a native categorical (pandas category
    dtype) string input and NaNs in training and scoring rows: set-membership
    splits plus missing-value default children, 6-class softmax."""
    X, y = with_band(df[FEATURES]), df[TARGET]
    Xtrain = blank_cells(X[FEATURES], SEED + 2)
    Xtrain["alcohol_band"] = pd.Categorical(X["alcohol_band"], categories=["high", "low", "mid"])
    Xscore = blank_cells(X[FEATURES], SEED + 1)
    band = X["alcohol_band"].copy()
    band[np.random.RandomState(SEED + 3).rand(len(band)) < MISSING_FRACTION] = np.nan
    band.iloc[0] = X["alcohol_band"].iloc[0]
    Xscore["alcohol_band"] = pd.Categorical(band, categories=["high", "low", "mid"])
    p = PMMLPipeline([("classifier", HistGradientBoostingClassifier(
        max_iter=15, max_depth=3, categorical_features="from_dtype", random_state=SEED))])
    return p, Xtrain, y, Xscore


def m_imputer_logreg_missing(df):
    """SimpleImputer (mean) => MiningField missingValueReplacement; scored on rows
    with ~10% blank cells."""
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("imputer", SimpleImputer(strategy="mean")),
                      ("scaler", StandardScaler()),
                      ("classifier", LogisticRegression(max_iter=2000))])
    return p, X, y, blank_cells(X, SEED + 1)


def m_hgb_regressor_missing(df):
    """HistGradientBoosting trained with NaNs (learned missing-value directions);
    scored on rows with ~10% blank cells."""
    X, y = df[FEATURES], df[TARGET].astype("float64")
    Xtrain = blank_cells(X, SEED + 2)
    p = PMMLPipeline([("regressor", HistGradientBoostingRegressor(
        max_iter=30, max_depth=4, random_state=SEED))])
    return p, Xtrain, y, blank_cells(X, SEED + 1)


def m_expression_linreg(df):
    """Derived features via sklearn2pmml ExpressionTransformer (PMML Apply)."""
    X, y = df[FEATURES], df[TARGET].astype("float64")
    ct = ColumnTransformer([
        ("num", "passthrough", FEATURES),
        ("so2_ratio", ExpressionTransformer("X[0] / X[1]"),
         ["free sulfur dioxide", "total sulfur dioxide"]),
        # (a one-column ExpressionTransformer returns 1-D here, so use FunctionTransformer)
        ("log_sugar", FunctionTransformer(np.log), ["residual sugar"]),
        ("sulph_if", ExpressionTransformer("X[0] * 2.0 if X[1] > 11.0 else X[0]"),
         ["sulphates", "alcohol"]),
        ("acid_sum", ExpressionTransformer("X[0] + X[1] + X[2]"),
         ["fixed acidity", "volatile acidity", "citric acid"]),
    ])
    p = PMMLPipeline([("mapper", ct), ("regressor", LinearRegression())])
    return p, X, y, X


def m_naive_bayes(df):
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("classifier", GaussianNB())])
    return p, X, y, X


def m_svr(df):
    X, y = df[FEATURES], df[TARGET].astype("float64")
    # a subset keeps the number of support vectors (and the file) small
    Xs, ys = X.iloc[::4], y.iloc[::4]
    p = PMMLPipeline([("scaler", StandardScaler()),
                      ("regressor", SVR(kernel="rbf", C=1.0, epsilon=0.5, gamma="scale"))])
    return p, Xs, ys, X


def m_knn_classifier(df):
    """k-NN (5 neighbours, euclidean) over standardized inputs; a subset of the rows
    (every 8th) are the TrainingInstances, so the file stays small."""
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("scaler", StandardScaler()),
                      ("classifier", KNeighborsClassifier(n_neighbors=5))])
    return p, X.iloc[::8], y.iloc[::8], X


def m_knn_regressor(df):
    """k-NN regression, 7 neighbours weighted by inverse distance."""
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("scaler", MinMaxScaler()),
                      ("regressor", KNeighborsRegressor(n_neighbors=7, weights="distance"))])
    # scoring rows 1, 9, 17, ... are not training instances: no zero distances
    return p, X.iloc[::8], y.iloc[::8], X


def m_kbins_linreg(df):
    """KBinsDiscretizer (quantile bins): sklearn2pmml writes a DefineFunction
    (the bin-edge epsilon) applied before each Discretize."""
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("kbins", KBinsDiscretizer(n_bins=5, encode="ordinal", strategy="quantile",
                                                 quantile_method="averaged_inverted_cdf")),
                      ("regressor", LinearRegression())])
    return p, X, y, X


def m_isolation_forest(df):
    """IsolationForest: average path length, normalized score, decision function and
    the outlier flag as output fields."""
    X = df[FEATURES]
    p = PMMLPipeline([("estimator", IsolationForest(n_estimators=20, max_samples=128,
                                                    random_state=SEED))])
    return p, X, None, X


def m_xgb_classifier(df):
    """XGBoost multi-class (labels quality-3 = 0..5): x-mathContext="float"."""
    X, y = df[FEATURES], df[TARGET] - 3
    p = PMMLPipeline([("classifier", XGBClassifier(n_estimators=20, max_depth=3,
                                                   learning_rate=0.3, random_state=SEED))])
    return p, X, y, X


def m_xgb_regressor_missing(df):
    """XGBoost regression trained and scored with ~10% blank cells (learned default
    directions): x-mathContext="float"."""
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("regressor", XGBRegressor(n_estimators=30, max_depth=4,
                                                 learning_rate=0.2, random_state=SEED))])
    return p, blank_cells(X, SEED + 2), y, blank_cells(X, SEED + 1)


def m_lgbm_classifier(df):
    X, y = df[FEATURES], df[TARGET]
    p = PMMLPipeline([("classifier", LGBMClassifier(n_estimators=20, num_leaves=15,
                                                    random_state=SEED, verbose=-1))])
    return p, X, y, X


def m_lgbm_regressor_missing(df):
    X, y = df[FEATURES], df[TARGET].astype("float64")
    p = PMMLPipeline([("regressor", LGBMRegressor(n_estimators=30, num_leaves=15,
                                                  random_state=SEED, verbose=-1))])
    return p, blank_cells(X, SEED + 2), y, blank_cells(X, SEED + 1)


MODELS = {
    "gbm_classifier": m_gbm_classifier,
    "gbm_regressor": m_gbm_regressor,
    "rf_classifier": m_rf_classifier,
    "rf_regressor": m_rf_regressor,
    "logreg_multinomial": m_logreg_multinomial,
    "mlp_classifier": m_mlp_classifier,
    "mlp_regressor": m_mlp_regressor,
    "decision_tree_classifier": m_decision_tree_classifier,
    "linear_regression": m_linear_regression,
    "categorical_logreg": m_categorical_logreg,
    "categorical_tree_regressor": m_categorical_tree_regressor,
    "categorical_mlp_classifier": m_categorical_mlp_classifier,
    "hgb_classifier_categorical_missing": m_hgb_classifier_categorical_missing,
    "imputer_logreg_missing": m_imputer_logreg_missing,
    "hgb_regressor_missing": m_hgb_regressor_missing,
    "expression_linreg": m_expression_linreg,
    "naive_bayes": m_naive_bayes,
    "svr": m_svr,
    "knn_classifier": m_knn_classifier,
    "knn_regressor": m_knn_regressor,
    "kbins_linreg": m_kbins_linreg,
    "isolation_forest": m_isolation_forest,
    "xgb_classifier": m_xgb_classifier,
    "xgb_regressor_missing": m_xgb_regressor_missing,
    "lgbm_classifier": m_lgbm_classifier,
    "lgbm_regressor_missing": m_lgbm_regressor_missing,
}


# ---------------------------------------------------------------------------

def fmt(v):
    """Python repr for numbers (shortest round-trip), empty for missing."""
    if v is None:
        return ""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"  # PMML's spelling of booleans
    if isinstance(v, int):
        return repr(v)
    s = str(v)
    if any(c in s for c in ',"\n'):
        raise ValueError("value needs CSV quoting: %r" % s)
    return s


def strip_timestamp(path):
    """Drop the Header/Timestamp element so that regeneration is byte-stable."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\n\s*<Timestamp>[^<]*</Timestamp>", "", text)
    path.write_text(text, encoding="utf-8")


def build(name, fn, df):
    pipeline, X_train, y_train, X_score = fn(df)
    if y_train is None:  # outlier detectors are fitted without a target
        pipeline.fit(X_train)
    else:
        pipeline.fit(X_train, y_train.rename(TARGET))
    pmml_path = PMML_DIR / (name + ".pmml")
    sklearn2pmml(pipeline, str(pmml_path))
    strip_timestamp(pmml_path)

    evaluator = make_evaluator(str(pmml_path), backend="jpype").verify()
    input_names = [f.getName() for f in evaluator.getInputFields()]
    # keep data-set column order for the header
    columns = [c for c in X_score.columns if c in input_names]
    missing = set(input_names) - set(columns)
    if missing:
        raise RuntimeError("%s: PMML input fields not in data: %s" % (name, missing))

    # feed exactly the model inputs; NaN -> missing (nan_as_missing=True)
    args = X_score[columns].astype(object).where(X_score[columns].notna(), None)
    results = evaluator.evaluateAll(args)
    if "errors" in results.columns:
        errs = results["errors"].dropna()
        if len(errs):
            raise RuntimeError("%s: evaluation errors, e.g. %s" % (name, errs.iloc[0]))
        results = results.drop(columns=["errors"])
    if len(results) != len(X_score):
        raise RuntimeError("%s: %d results for %d rows" % (name, len(results), len(X_score)))

    # A model without a target field (an outlier detector) has an unnamed target
    # column in JPMML's results; it repeats the predictedValue output field
    # (rawAnomalyScore), so it is left out.
    unnamed = [c for c in results.columns if not isinstance(c, str)]
    if unnamed:
        results = results.drop(columns=unnamed)
    out_cols = list(results.columns)
    golden_path = GOLDEN_DIR / (name + ".csv")
    in_rows = X_score[columns].astype(object).values.tolist()
    out_rows = results.astype(object).values.tolist()
    with open(golden_path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(columns + ["expected:" + c for c in out_cols]) + "\n")
        for ir, orow in zip(in_rows, out_rows):
            fh.write(",".join([fmt(v) for v in ir] + [fmt(v) for v in orow]) + "\n")

    # sanity check against scikit-learn's own prediction (report only)
    note = ""
    try:
        # an outlier detector's label is its predict(outlier) output
        target_col = "predict(outlier)" if "predict(outlier)" in out_cols else out_cols[0]
        jp = results[target_col].to_numpy()
        sk = pipeline.predict(X_score)
        if np.issubdtype(np.asarray(sk).dtype, np.floating):
            ok = ~np.isnan(jp.astype(float))
            d = np.max(np.abs(jp[ok].astype(float) - sk[ok])) if ok.any() else float("nan")
            note = "max|jpmml-sklearn|=%.3g" % d
        else:
            note = "label agreement=%.4f" % np.mean(jp == sk)
    except Exception as e:  # noqa: BLE001 - informational only
        note = "sklearn check skipped (%s)" % type(e).__name__
    size = pmml_path.stat().st_size
    print("%-28s %8d bytes  %d inputs  outputs=%s  %s" % (
        name, size, len(columns), out_cols, note), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma separated model names (default: all)")
    args = ap.parse_args()
    names = list(MODELS) if not args.only else args.only.split(",")
    for n in names:
        if n not in MODELS:
            sys.exit("unknown model %s; known: %s" % (n, ", ".join(MODELS)))
    PMML_DIR.mkdir(parents=True, exist_ok=True)
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    np.random.seed(SEED)
    df = load_wine()
    assert len(df) == 1599, len(df)
    failed = []
    for n in names:
        try:
            build(n, MODELS[n], df)
        except Exception as e:  # keep going, report at the end
            print("%-28s FAILED: %s: %s" % (n, type(e).__name__, str(e)[:2000]), flush=True)
            failed.append(n)
    if failed:
        sys.exit("failed: " + ", ".join(failed))


if __name__ == "__main__":
    main()
