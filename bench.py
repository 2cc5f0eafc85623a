"""Where the report's time goes on this machine: `make bench` writes results/bench.json.

Training throughput of every kind of model the report trains, through the project's helper
(`helpers.train`, uncached) and through plain `model.fit` defaults, alternated in one process so
that both see the same (shared, noisy) machine; inference speed of the MLP and the best CNN; the
time chapter 04's fastest configuration takes to reach 99 % test accuracy. Every timing is
repeated (--repeats) and reported as a median with its range.

    python bench.py [--repeats 3] [--skip-slow]

`make bench-notebooks` adds the wall time of every notebook with a cold and a warm cache
(`python bench.py --notebooks`, after timed `make report` runs; see the Makefile).
"""

import argparse
import json
import time

import numpy as np
import pandas as pd

import helpers

# name: (builder, build kwargs, training kwargs as the chapters use them)
CNN = {"flatten": False, "batch_size": 128, "schedule": "onecycle", "learning_rate": 3e-3}
MODELS = {
    "softmax regression (02)": (helpers.dense_net, {"hidden": ()},
                                {"batch_size": 512, "learning_rate": 1e-2, "schedule": "cosine"}),
    "student dense, batch 128 (02, 03)": (helpers.dense_net, {"hidden": (256, 256)},
                                          {"batch_size": 128, "scale": False}),
    "MLP 512x512 (02)": (helpers.dense_net, {"hidden": (512, 512), "dropout": 0.3},
                         {"batch_size": 512, "learning_rate": 3e-3, "schedule": "cosine"}),
    "sweep net, batch 16 (03)": (helpers.dense_net, {"hidden": (128,)},
                                 {"batch_size": 16, "optimizer": "sgd", "learning_rate": 0.1,
                                  "optimizer_config": {"momentum": 0.9}}),
    "student CNN (04)": (helpers.conv_net, {}, CNN),
    "narrow CNN (04)": (helpers.conv_net, {"filters": (16, 32), "batch_norm": True,
                                           "dropout": 0.0}, CNN),
    "best CNN (04)": (helpers.conv_net, {"batch_norm": True, "convs": (1, 2), "dense": 128}, CNN),
}
# images per timed run: enough for a few seconds of training each
N_IMAGES = {"dense": helpers.pick(full=49_152, smoke=2_048),
            "conv": helpers.pick(full=12_800, smoke=512)}


def _plain_fit(build, build_kwargs, train_kwargs, x, y) -> float:
    """Seconds of one epoch of `model.fit` with Keras defaults (Adam, no extras)."""
    helpers.set_seed(0)
    model = build(**build_kwargs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=train_kwargs["batch_size"], epochs=1, verbose=0)
    return time.perf_counter() - start


def _helper_fit(build, build_kwargs, train_kwargs, n) -> float:
    """Seconds of one epoch through helpers.train (uncached; evaluation excluded, as it reports)."""
    result = helpers.train(build, seed=0, epochs=1, n_train=n, cache=False, verbose=False,
                           **train_kwargs, **build_kwargs)
    return result["train_seconds"]


def _summary(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"median": float(np.median(values)), "min": float(values.min()),
            "max": float(values.max()), "runs": [float(v) for v in values]}


def training(repeats: int) -> pd.DataFrame:
    rows = []
    for name, (build, build_kwargs, train_kwargs) in MODELS.items():
        kind = "conv" if build is helpers.conv_net else "dense"
        n = N_IMAGES[kind]
        split = helpers.mnist_split(flatten=kind == "dense", n_train=n,
                                    scale=train_kwargs.get("scale", True))
        x, y = split["train"]
        helpers.set_seed(0)
        macs = helpers.count_macs(build(**build_kwargs))
        helper_s, plain_s = [], []
        for r in range(repeats):  # alternate the order so that drift hits both alike
            order = ("helper", "plain") if r % 2 == 0 else ("plain", "helper")
            for which in order:
                if which == "helper":
                    helper_s.append(_helper_fit(build, build_kwargs, train_kwargs, n))
                else:
                    plain_s.append(_plain_fit(build, build_kwargs, train_kwargs, x, y))
        helper_ips, plain_ips = n / np.array(helper_s), n / np.array(plain_s)
        ratio = helper_ips / plain_ips  # paired: repeat r of each ran next to each other
        rows.append({"model": name, "batch": train_kwargs["batch_size"], "images": n,
                     "macs_per_image": macs,
                     "helper_images_per_s": _summary(helper_ips),
                     "plain_fit_images_per_s": _summary(plain_ips),
                     "helper_gflops": float(np.median(helper_ips)) * 6 * macs / 1e9,
                     "ratio_helper_to_plain": _summary(ratio)})
        print(f"{name:36s} helper {np.median(helper_ips):8.0f} img/s  plain fit "
              f"{np.median(plain_ips):8.0f} img/s  ratio {np.median(ratio):.2f} "
              f"({ratio.min():.2f}-{ratio.max():.2f})", flush=True)
    return rows


def inference() -> dict:
    x_test = helpers.mnist_split(flatten=False, n_eval=1000)["test"][0]
    out = {}
    for name in ("MLP 512x512 (02)", "best CNN (04)"):
        build, build_kwargs, _ = MODELS[name]
        helpers.set_seed(0)
        model = build(**build_kwargs)
        x = x_test.reshape(len(x_test), -1) if build is helpers.dense_net else x_test
        out[name] = helpers.inference_speed(model, x, repeats=helpers.pick(30, 5),
                                            batch_repeats=helpers.pick(7, 2))
        print(f"{name:36s} latency {out[name]['latency_ms']:.2f} ms, "
              f"throughput {out[name]['throughput']:.0f} img/s", flush=True)
    return out


def time_to_99(repeats: int) -> dict:
    """Chapter 04's fastest configuration to 99 % (its recorded recipe), trained afresh."""
    chapter04 = helpers.load_json("04_cnn")
    best, fastest = chapter04["best_single"], chapter04["fast_to_99"]["config"]
    if fastest != f"{best['row']}, {best['epochs']} epochs":
        raise ValueError(f"chapter 04's fastest configuration to 99 % is {fastest!r}, not its best "
                         "single model: its recipe is not in results/04_cnn.json to time here")
    runs = []
    for seed in range(repeats):
        r = helpers.train(helpers.conv_net, seed=seed, epochs=best["epochs"],
                          batch_size=best["batch_size"], flatten=False, cache=False,
                          verbose=False, **best["training"], **best["build_kwargs"])
        runs.append({"seed": seed, "train_seconds": r["train_seconds"],
                     "test_accuracy": r["test_accuracy"]})
        print(f"to 99 %: seed {seed} {r['train_seconds']:.0f} s, test "
              f"{helpers.fmt_pct(r['test_accuracy'])}", flush=True)
    reached = [r["train_seconds"] for r in runs if r["test_accuracy"] >= 0.99]
    return {"config": fastest, "runs": runs,
            "seconds_to_99": _summary(reached) if reached else None}


def notebooks() -> dict:
    """Per-notebook wall time, from the execution timestamps nbclient records in each cell."""
    out = {}
    for path in helpers.chapter_notebooks():
        cells = json.loads(path.read_text())["cells"]
        stamps = [pd.Timestamp(c["metadata"]["execution"][k]) for c in cells
                  for k in ("iopub.execute_input", "shell.execute_reply")
                  if k in c.get("metadata", {}).get("execution", {})]
        out[path.stem] = (max(stamps) - min(stamps)).total_seconds() if stamps else None
    return out


def markdown_table(record: dict, baseline: dict | None = None) -> str:
    """The README's performance table: training throughput per model (helper and plain fit,
    their paired ratio, the helper's effective GFLOP/s), and the helper before the speed-ups of
    issue 7 when `baseline` (a bench record from before them) is given."""
    def ips(s):
        return f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"

    before = {row["model"]: row for row in (baseline or {}).get("training", [])}
    head = ["model", "batch", "MACs/image", "helper, images/s"]
    head += ["helper before, images/s"] if before else []
    head += ["plain `model.fit`, images/s", "helper ÷ plain fit", "helper GFLOP/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in record["training"]:
        ratio = row["ratio_helper_to_plain"]
        cells = [row["model"], str(row["batch"]), f"{row['macs_per_image']:,}",
                 ips(row["helper_images_per_s"])]
        if before:
            old = before.get(row["model"])
            cells.append(ips(old["helper_images_per_s"]) if old else "")
        cells += [ips(row["plain_fit_images_per_s"]),
                  f"{ratio['median']:.2f} ({ratio['min']:.2f}–{ratio['max']:.2f})",
                  f"{row['helper_gflops']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_table(record: dict, baseline: dict) -> str:
    """The README's `make report` table: total and per-notebook wall time with a cold and a warm
    cache, before issue 7's speed-ups (`baseline`) and after (`record`), and after ÷ before."""
    chapters = sorted(baseline["notebooks"]["cold"]["notebook_seconds"])
    head = ["cache", "", "make report"] + [f"chapter {name[:2]}" for name in chapters]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cache in ("cold", "warm"):
        runs = {"before": baseline["notebooks"][cache], "after": record["notebooks"][cache]}
        for label, run in runs.items():
            cells = [cache if label == "before" else "", label,
                     f"{run['make_report_seconds']:,.0f} s"]
            cells += [f"{run['notebook_seconds'][name]:,.0f} s" for name in chapters]
            lines.append("| " + " | ".join(cells) + " |")
        ratio = [runs["after"]["make_report_seconds"] / runs["before"]["make_report_seconds"]]
        ratio += [runs["after"]["notebook_seconds"][name] / runs["before"]["notebook_seconds"][name]
                  for name in chapters]
        lines.append("| " + " | ".join(["", "after ÷ before"] + [f"{r:.2f}" for r in ratio])
                     + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=helpers.pick(3, 1))
    parser.add_argument("--skip-slow", action="store_true", help="leave out the time to 99 %%")
    parser.add_argument("--notebooks", metavar="LABEL",
                        help="record the notebooks' last execution times under LABEL "
                             "(cold or warm) in results/bench.json, and nothing else")
    parser.add_argument("--total", type=float, help="with --notebooks: make report's wall time")
    args = parser.parse_args()
    try:
        record = helpers.load_json("bench")
    except helpers.MissingResultsError:
        record = {}
    if args.notebooks:
        record.setdefault("notebooks", {})[args.notebooks] = {
            "make_report_seconds": args.total, "notebook_seconds": notebooks()}
    else:
        record["training"] = training(args.repeats)
        record["inference"] = inference()
        helpers.save_json("bench", record)  # keep what is measured, should the slow part fail
        if not args.skip_slow and not helpers.SMOKE:
            record["time_to_99"] = time_to_99(args.repeats)
    print("Wrote", helpers.save_json("bench", record))
    if "training" in record:
        print(markdown_table(record))


if __name__ == "__main__":
    main()
