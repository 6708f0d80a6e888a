#!/usr/bin/env python3
"""ks against JPMML-Evaluator on the seed models, in the same run on the same rows.

For each seed model (data/<stem>.pmml) and its golden rows (data/golden/<stem>.csv, the 1599
wine records with the model's field names), each round runs
  - JpmmlBench (models/benches/jpmml/JpmmlBench.java, installed by scripts/install-jpmml.sh):
    JPMML-Evaluator 1.7.7 interpreted (`evaluate(Map)`) and transpiled (`TranspilerTransformer`),
    warm, every result field decoded;
  - ks-score --bench: the generic API (`Bound::score_batch_into`, records by field name) and
    the fast path (`Model::score_row`).
Every figure is CPU time of the scoring thread per record (the machine is shared: a descheduled
thread does not count). Rounds interleave JPMML and ks; the table gives medians over all
repeats of all rounds, and the ratio of JPMML's faster mode to ks.

  python3 models/benches/jpmml/compare.py [--rounds 3] [--passes 1000] [--json out.json]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SEEDS = [
    ("tree classification", "winequalityDecisionTreeClassification"),
    ("tree regression", "winequalityDesisionTreeRegression"),
    ("GLM gamma", "winequalityGeneralizedLinearRegressionGamma"),
    ("GLM gaussian", "winequalityGeneralizedLinearRegressionGaussian"),
    ("linear regression", "winequalityLinearRegression"),
    ("MLP", "winequalityMultilayerPerceptron"),
    ("random forest", "winequalityRandonForrestClassification"),
]


def ks_score_binary(args):
    if args.ks_score:
        return args.ks_score
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "ks-models", "--bin", "ks-score"],
        cwd=ROOT,
        check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "release" / "ks-score")


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def load():
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per round and mode")
    ap.add_argument("--passes", type=int, default=1000, help="ks: passes over the rows per repeat")
    ap.add_argument("--jpmml-seconds", type=float, default=1.0, help="JPMML: CPU seconds per repeat")
    ap.add_argument("--warmup-seconds", type=float, default=3.0, help="JPMML: CPU seconds of warm-up")
    ap.add_argument("--only", help="comma-separated model stems or labels")
    ap.add_argument("--ks-score", help="a built ks-score binary (default: cargo build --release)")
    ap.add_argument("--json", help="write the medians and all samples here")
    args = ap.parse_args()

    seeds = SEEDS
    if args.only:
        want = {w.strip() for w in args.only.split(",")}
        seeds = [s for s in SEEDS if s[0] in want or s[1] in want]
    ks_score = ks_score_binary(args)
    classpath = subprocess.run(
        [str(ROOT / "scripts" / "install-jpmml.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    samples = {stem: {"interpreted": [], "transpiled": [], "score_row": [], "generic": []} for _, stem in seeds}
    loads = [load()]
    for r in range(args.rounds):
        jobs = [f"{ROOT}/data/{stem}.pmml={ROOT}/data/golden/{stem}.csv" for _, stem in seeds]
        out = subprocess.run(
            ["java", "-cp", classpath, "JpmmlBench", "--warmup-seconds", str(args.warmup_seconds),
             "--seconds", str(args.jpmml_seconds), "--repeats", str(args.repeats)] + jobs,
            check=True, capture_output=True, text=True,
        ).stdout
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if rec.get("mismatches"):
                print(f"warning: {rec['model']}: transpiled and interpreted JPMML differ on "
                      f"{rec['mismatches']} rows", file=sys.stderr)
            samples[rec["model"]][rec["mode"]].extend(rec["us_per_record"])
        for _, stem in seeds:
            out = subprocess.run(
                [ks_score, "--model", f"{ROOT}/data/{stem}.pmml", "--input", f"{ROOT}/data/golden/{stem}.csv",
                 "--output", os.devnull, "--bench", str(args.passes), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True,
            ).stdout
            for line in out.splitlines():
                if line.startswith("bench: "):
                    rec = json.loads(line[len("bench: "):])
                    samples[stem]["generic"].extend(x / 1000 for x in rec["generic_ns"])
                    samples[stem]["score_row"].extend(x / 1000 for x in rec["score_row_ns"])
        loads.append(load())
        print(f"round {r + 1}/{args.rounds} done (load {loads[-1]})", file=sys.stderr)

    rows = []
    print(f"machine: {machine()}; load average during the run: {', '.join(loads)}")
    print(f"command: python3 models/benches/jpmml/compare.py --rounds {args.rounds} --repeats {args.repeats} "
          f"--passes {args.passes} --jpmml-seconds {args.jpmml_seconds} --warmup-seconds {args.warmup_seconds}")
    print("CPU µs per record, medians of", args.rounds * args.repeats, "samples each\n")
    print("| model | JPMML interpreted | JPMML transpiled | ks score_row | ks generic | score_row vs best JPMML | generic vs best JPMML | 10× |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, stem in seeds:
        s = samples[stem]
        med = {k: statistics.median(v) if v else float("nan") for k, v in s.items()}
        best = min(med["interpreted"], med["transpiled"])
        rr, rg = best / med["score_row"], best / med["generic"]
        met = "met" if min(rr, rg) >= 10 else "missed"
        print(f"| {label} | {med['interpreted']:.3f} | {med['transpiled']:.3f} | {med['score_row']:.4f} | "
              f"{med['generic']:.4f} | {rr:.1f}× | {rg:.1f}× | {met} |")
        rows.append({"model": stem, "label": label, "median_us": med, "ratio_score_row": rr,
                     "ratio_generic": rg, "samples_us": s})
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "loads": loads, "models": rows}, indent=1))


if __name__ == "__main__":
    main()
