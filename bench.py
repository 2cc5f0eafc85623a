"""Where the report's time goes on this machine: `make bench` writes results/bench.json.

Every timing is repeated (--repeats), alternated between the variants it compares so that both
see the same (shared, noisy) machine, and reported as a median with its range; ratios are paired
(repeat r of one variant against repeat r of the other). Budgets are in training images, so a
figure reads on any machine as images per second or seconds per million training images; the
machine (CPU model and instruction-set flags) is recorded with the results.

    python bench.py [--repeats 3] [--skip-slow]

Sections: `training` (every headline model, its recipe read from the chapters' results files,
through `helpers.train` and through plain `model.fit`), `batch_norm` (the best CNN with
normalisation on TensorFlow's fused kernel, with Keras's layer as before issue 17, and without
normalisation), `levers` (steps per call, batch size with the learning rate scaled, one or two
threads, bfloat16 where the CPU has it), `inference`, `time_to_99`. `make bench-notebooks` adds
the wall time of every notebook with a cold and a warm cache (`python bench.py --notebooks`).
"""

import argparse
import json
import time

import numpy as np
import pandas as pd

import helpers
from helpers import Net, Recipe

# Images per timed run (one epoch): enough that the one-time cost of tracing the training step
# (seconds for a CNN) is a small part of the timing; for the CNNs, the whole training split.
N_IMAGES = {"dense": helpers.pick(full=49_152, smoke=2_048),
            "conv": helpers.pick(full=55_000, smoke=512)}
SECTIONS = ("training", "batch_norm", "levers", "inference", "time_to_99")
# The speed goals of issue 17 (results/bench.json and the README report them against these).
GOAL_NORMALISED_VS_PLAIN = 0.85
GOAL_BEST_CNN_AFTER_VS_BEFORE = 1.4


def headline_models() -> dict[str, tuple[Net, Recipe]]:
    """The models the chapters train, as their results files record them (never re-declared)."""
    dense, cnn = helpers.records.load("02_dense_network"), helpers.records.load("04_cnn")
    headlines = {
        "softmax regression (02)": dense.softmax_regression.recipe,
        "student dense, batch 128 (02)": dense.student_setting["batch128"].recipe,
        "MLP (02)": dense.mlp.recipe,
        "student CNN (04)": cnn.student_level.recipe,
        "mnist_cnn.py (04)": cnn.reproduction.programs[
            "mnist_cnn.py, Adadelta 1.0, 12 epochs"].recipe,
        "best CNN (04)": cnn.best_single.recipe,
        "fast to 99 % (04)": cnn.fast_to_99.recipe,
    }
    return {name: helpers.from_headline(headline)[:2] for name, headline in headlines.items()}


def _kind(net: Net) -> str:
    return "dense" if net.build is helpers.dense_net else "conv"


def _budget(net: Net, recipe: Recipe, n: int | None = None) -> Recipe:
    """One epoch of n images (N_IMAGES by kind), full-size evaluation sets skipped."""
    return recipe.replace(epochs=1, steps=None, patience=None, snapshots=(), trace_steps=0,
                          n_train=n or N_IMAGES[_kind(net)], n_eval=1000)


def _helper_ips(net: Net, recipe: Recipe, seed: int = 0) -> float:
    """Training images per second through helpers.train (uncached; evaluation excluded)."""
    r = helpers.train(net, recipe, seed, use_cache=False)
    return r.images_seen / r.train_seconds


def _plain_fit_ips(net: Net, recipe: Recipe) -> float:
    """Training images per second of one epoch of `model.fit` with Keras defaults."""
    x, y = helpers.mnist_split(flatten=recipe.flatten, n_train=recipe.n_train,
                               scale=recipe.scale)["train"]
    helpers.set_seed(0)
    model = net.make()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=recipe.batch_size, epochs=1, verbose=0)
    return len(y) / (time.perf_counter() - start)


def _summary(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"median": float(np.median(values)), "min": float(values.min()),
            "max": float(values.max()), "runs": [float(v) for v in values]}


def _alternated(variants: dict, repeats: int) -> dict[str, list[float]]:
    """{name: [measure() per repeat]} with the order of the variants rotated every repeat, so a
    drift of the machine's speed hits them alike."""
    out = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out[name].append(variants[name]())
    return out


def _throughput(ips: list[float]) -> dict:
    return {"images_per_s": _summary(ips),
            "seconds_per_million_images": _summary([1e6 / v for v in ips])}


def _ratio(a: list[float], b: list[float]) -> dict:
    return _summary(np.asarray(a) / np.asarray(b))


def training(models: dict[str, tuple[Net, Recipe]], repeats: int) -> list[dict]:
    rows = []
    for name, (net, recipe) in models.items():
        recipe = _budget(net, recipe)
        helpers.set_seed(0)
        macs = helpers.count_macs(net.make())
        runs = _alternated({"helper": lambda: _helper_ips(net, recipe),  # noqa: B023
                            "plain": lambda: _plain_fit_ips(net, recipe)}, repeats)  # noqa: B023
        rows.append({"model": name, "net": net.to_dict(), "batch": recipe.batch_size,
                     "images": recipe.n_train, "macs_per_image": macs,
                     "helper": _throughput(runs["helper"]),
                     "plain_fit_images_per_s": _summary(runs["plain"]),
                     "helper_gflops": float(np.median(runs["helper"])) * 6 * macs / 1e9,
                     "ratio_helper_to_plain": _ratio(runs["helper"], runs["plain"])})
        print(f"{name:32s} helper {np.median(runs['helper']):8.0f} img/s  plain fit "
              f"{np.median(runs['plain']):8.0f} img/s", flush=True)
    return rows


def batch_norm(net: Net, recipe: Recipe, repeats: int) -> dict:
    """The best CNN's throughput with its normalisation on the fused kernel (after issue 17),
    with Keras's BatchNormalization layer (before) and without normalisation (plain)."""
    recipe = _budget(net, recipe)
    variants = {"fused": net.replace(batch_norm=True), "keras": net.replace(batch_norm="keras"),
                "plain": net.replace(batch_norm=False)}
    runs = _alternated({k: (lambda v=v: _helper_ips(v, recipe)) for k, v in variants.items()},
                       repeats)
    out = {"net": net.to_dict(), "batch": recipe.batch_size, "images": recipe.n_train,
           **{k: _throughput(v) for k, v in runs.items()},
           "fused_vs_plain": _ratio(runs["fused"], runs["plain"]),
           "after_vs_before": _ratio(runs["fused"], runs["keras"]),
           "goals": {"fused_vs_plain": GOAL_NORMALISED_VS_PLAIN,
                     "after_vs_before": GOAL_BEST_CNN_AFTER_VS_BEFORE}}
    print(f"batch norm: fused/plain {out['fused_vs_plain']['median']:.2f}, "
          f"fused/keras {out['after_vs_before']['median']:.2f}", flush=True)
    return out


def _two_runs_side_by_side(net: Net, recipe: Recipe) -> float:
    """Images/s of two seeds trained at once in one-thread worker processes, by wall clock
    (with evaluation, as `_two_runs_in_turn`; the workers are started before the clock)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="bench-cache-")
    previous = helpers.configure(cache=folder)
    try:
        tiny = recipe.replace(n_train=recipe.batch_size)  # start both workers, outside the clock
        helpers.train_many([(net, tiny, 8), (net, tiny, 9)], n_jobs=2)
        start = time.perf_counter()
        runs = helpers.train_many([(net, recipe, 0), (net, recipe, 1)], n_jobs=2)
        return sum(r.images_seen for r in runs) / (time.perf_counter() - start)
    finally:
        helpers.configure(**previous.as_dict())
        shutil.rmtree(folder, ignore_errors=True)


def _two_runs_in_turn(net: Net, recipe: Recipe) -> float:
    """Images/s of two seeds trained one after the other in this process, by wall clock."""
    start = time.perf_counter()
    runs = [helpers.train(net, recipe, seed, use_cache=False) for seed in (0, 1)]
    return sum(r.images_seen for r in runs) / (time.perf_counter() - start)


def _with_precision(policy: str, net: Net, recipe: Recipe, seed: int):
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return helpers.train(net, recipe, seed, use_cache=False)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def levers(net: Net, recipe: Recipe, repeats: int, precision_seeds: int) -> dict:
    """What else could speed up the best CNN, measured: steps per call into TensorFlow; batch
    size with the learning rate scaled alike (throughput only: what it does to accuracy is a
    question for the chapters); two runs in one-thread processes against one after the other;
    bfloat16 mixed precision (only on CPUs with AVX512_BF16 or AMX), for speed and for the
    accuracy of `precision_seeds` seeds."""
    base = _budget(net, recipe)
    out = {}

    def with_chunk(k):
        def measure():
            previous = helpers.configure(steps_per_execution=k)
            try:
                return _helper_ips(net, base)
            finally:
                helpers.configure(**previous.as_dict())
        return measure

    runs = _alternated({f"{k} steps per call": with_chunk(k) for k in (1, 32)}, repeats)
    out["steps_per_execution"] = {k: _throughput(v) for k, v in runs.items()}
    scale = {b: base.replace(batch_size=b, learning_rate=base.learning_rate * b / base.batch_size)
             for b in (base.batch_size, 2 * base.batch_size, 4 * base.batch_size)}
    runs = _alternated({f"batch {b}": (lambda r=r: _helper_ips(net, r)) for b, r in scale.items()},
                       repeats)
    out["batch_size"] = {k: _throughput(v) for k, v in runs.items()}
    runs = _alternated({"two 1-thread processes at once": lambda: _two_runs_side_by_side(net, base),
                        "one process, one run after another": lambda: _two_runs_in_turn(net, base)},
                       repeats)
    out["processes"] = {k: _throughput(v) for k, v in runs.items()}
    flags = set(helpers.environment_record()["cpu_flags"])
    if flags & {"avx512_bf16", "amx_bf16"}:
        runs = _alternated({p: (lambda p=p: _with_precision(p, net, base, 0).images_per_second)
                            for p in ("float32", "mixed_bfloat16")}, repeats)
        out["precision"] = {k: _throughput(v) for k, v in runs.items()}
        out["precision"]["bf16_vs_float32"] = _ratio(runs["mixed_bfloat16"], runs["float32"])
        if precision_seeds:  # accuracy over seeds at the chapter's own budget
            acc = {p: [_with_precision(p, net, recipe, s).test_accuracy
                       for s in range(precision_seeds)] for p in ("float32", "mixed_bfloat16")}
            diff = np.asarray(acc["mixed_bfloat16"]) - np.asarray(acc["float32"])
            out["precision"]["test_accuracy"] = {
                "recipe": recipe.to_dict(), **acc,
                "paired_difference": dict(zip(("mean", "low", "high"),
                                              helpers.mean_ci(diff), strict=True))}
    else:
        out["precision"] = "not measured: this CPU has neither AVX512_BF16 nor AMX"
    for name, section in out.items():
        if isinstance(section, dict):
            print(name, {k: round(v["images_per_s"]["median"]) for k, v in section.items()
                         if isinstance(v, dict) and "images_per_s" in v}, flush=True)
    return out


def inference(models: dict[str, tuple[Net, Recipe]]) -> dict:
    x_test = helpers.mnist_split(flatten=False, n_eval=1000)["test"][0]
    out = {}
    for name in ("MLP (02)", "best CNN (04)"):
        net, recipe = models[name]
        helpers.set_seed(0)
        x = x_test.reshape(len(x_test), -1) if recipe.flatten else x_test
        out[name] = helpers.inference_speed(net.make(), x, repeats=helpers.pick(30, 5),
                                            batch_repeats=helpers.pick(7, 2))
        print(f"{name:32s} latency {out[name]['latency_ms']:.2f} ms, "
              f"throughput {out[name]['throughput']:.0f} img/s", flush=True)
    return out


def time_to_99(net: Net, recipe: Recipe, repeats: int) -> dict:
    """Chapter 04's quickest configuration validated at 99 % (its recorded recipe), trained
    afresh per seed."""
    runs = []
    for seed in range(repeats):
        r = helpers.train(net, recipe, seed, use_cache=False)
        runs.append({"seed": seed, "train_seconds": r.train_seconds,
                     "images_seen": r.images_seen, "test_accuracy": r.test_accuracy})
        print(f"fast to 99 %: seed {seed} {r.train_seconds:.0f} s, test "
              f"{helpers.fmt_pct(r.test_accuracy)}", flush=True)
    reached = [r["train_seconds"] for r in runs if r["test_accuracy"] >= 0.99]
    return {"net": net.to_dict(), "recipe": recipe.to_dict(), "runs": runs,
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


def _range(s: dict, fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def markdown_table(record: dict) -> str:
    """The training-throughput table: per model, images/s and seconds per million images
    through the helper, plain `model.fit`, their paired ratio and the helper's GFLOP/s."""
    head = ["model", "batch", "MACs/image", "helper, images/s", "s per 10⁶ images",
            "plain `model.fit`, images/s", "helper ÷ plain fit", "helper GFLOP/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in record["training"]:
        cells = [row["model"], str(row["batch"]), f"{row['macs_per_image']:,}",
                 _range(row["helper"]["images_per_s"]),
                 _range(row["helper"]["seconds_per_million_images"]),
                 _range(row["plain_fit_images_per_s"]),
                 _range(row["ratio_helper_to_plain"], "{:.2f}"), f"{row['helper_gflops']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def batch_norm_table(record: dict) -> str:
    """The best CNN with and without normalisation, and the two ratios against their goals."""
    bn = record["batch_norm"]
    lines = ["| best CNN, batch normalisation | images/s | s per 10⁶ images |",
             "| --- | --- | --- |"]
    for key, label in (("fused", "fused kernel (now)"), ("keras", "Keras layer (before)"),
                       ("plain", "none")):
        lines.append(f"| {label} | {_range(bn[key]['images_per_s'])} | "
                     f"{_range(bn[key]['seconds_per_million_images'])} |")
    for key, label in (("fused_vs_plain", "fused ÷ none"), ("after_vs_before", "fused ÷ Keras")):
        ok = "met" if bn[key]["median"] >= bn["goals"][key] else "not met"
        lines.append(f"| {label} | {_range(bn[key], '{:.2f}')} | goal ≥ {bn['goals'][key]}: "
                     f"{ok} |")
    return "\n".join(lines)


def notebook_table(record: dict) -> str:
    """`make report`'s wall time, cold and warm cache, in total and per chapter (one run each)."""
    runs = record["notebooks"]
    chapters = sorted(runs["cold"]["notebook_seconds"])
    head = ["cache", "make report"] + [f"chapter {name[:2]}" for name in chapters]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cache in ("cold", "warm"):
        run = runs[cache]
        cells = [cache, f"{run['make_report_seconds']:,.0f} s"]
        cells += [f"{run['notebook_seconds'][name]:,.0f} s" for name in chapters]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def performance_page(record: dict, environment: dict) -> str:
    """docs/performance.md, written from results/bench.json (`python bench.py --write-docs`)."""
    levers, bn, ttn = record["levers"], record["batch_norm"], record["time_to_99"]
    spe, bs, pr, prec = (levers[k] for k in ("steps_per_execution", "batch_size", "processes",
                                             "precision"))

    def ips(entry):
        return f"{entry['images_per_s']['median']:,.0f}"

    def ratio(entry):
        return f"{entry['median']:.2f} ({entry['min']:.2f}–{entry['max']:.2f})"

    flags = ", ".join(environment["cpu_flags"])
    repeats = len(bn["fused"]["images_per_s"]["runs"])
    lever_repeats = len(spe["32 steps per call"]["images_per_s"]["runs"])
    if isinstance(prec, dict):
        acc, diff = prec["test_accuracy"], prec["test_accuracy"]["paired_difference"]
        bf16 = (f"{ips(prec['mixed_bfloat16'])} images/s against {ips(prec['float32'])} in "
                f"float32, {ratio(prec['bf16_vs_float32'])}×. Over {len(acc['float32'])} seeds of "
                f"the full recipe the test accuracy changed by {100 * diff['mean']:+.2f} points "
                f"(paired 95 % interval {100 * diff['low']:+.2f} to {100 * diff['high']:+.2f}). "
                "It stays **off**: only the AVX-512 kind of this project's machines has the "
                "instructions (elsewhere bfloat16 is emulated and slower), so turning it on "
                "would make the report's numbers depend on the machine that ran them, and a few "
                "seeds cannot show that accuracy is unchanged to the precision the chapters need.")
        gain = prec["bf16_vs_float32"]["median"]
        product = (f" Of the levers below, bfloat16 would add {gain:.2f}× (about "
                   f"{bn['after_vs_before']['median'] * gain:.2f}× together), and it stays off "
                   "(see there).")
    else:
        bf16, product = prec, ""
    met = bn["after_vs_before"]["median"] >= bn["goals"]["after_vs_before"]
    machine = (f"{environment['cpu']}, {environment['cpu_count']} cores, CPU flags {flags}; "
               f"TensorFlow sees {len(environment.get('gpus') or [])} GPU")
    verdict = (f"The goal of {bn['goals']['after_vs_before']}× for the best CNN is "
               f"{'met' if met else '**not met**'} by this change alone "
               f"({bn['after_vs_before']['median']:.2f}×).{product}")
    images = {row["net"]["builder"]: row["images"] for row in record["training"]}
    sizes = (f"{images['dense_net']:,} training images for the dense networks, "
             f"{images['conv_net']:,} for the CNNs")
    chunks = (f"32 steps per call {ips(spe['32 steps per call'])} images/s, 1 step per call "
              f"{ips(spe['1 steps per call'])}")
    batches = ", ".join(f"{k} {ips(v)}" for k, v in bs.items())
    side, turn = (ips(pr[k]) for k in ("two 1-thread processes at once",
                                       "one process, one run after another"))
    budget = f"{ttn['runs'][0]['images_seen']:,}"
    to_none = bn["fused_vs_plain"]["median"]
    versus_none = (
        "The fused layer is faster than no normalisation at all: it replaces the convolutions' "
        "biases." if to_none >= 1 else
        f"With the fused layer the network keeps {to_none:.0%} of its throughput without "
        f"normalisation (goal: {bn['goals']['fused_vs_plain']:.0%}); with Keras's layer it kept "
        f"{bn['keras']['images_per_s']['median'] / bn['plain']['images_per_s']['median']:.0%}.")
    gain_side = pr["two 1-thread processes at once"]["images_per_s"]["median"] / pr[
        "one process, one run after another"]["images_per_s"]["median"]
    processes = (
        f"Side by side gave {gain_side:.2f}× the throughput: a lever the chapters do not use "
        "for the CNNs yet (their runs would change in the last digits, as one-thread sums round "
        "differently, so every CNN would be trained again)." if gain_side > 1 else
        "The CNNs keep training in the notebook's process.")
    batch_ips = [v["images_per_s"]["median"] for v in bs.values()]
    best_batch = max(batch_ips) / batch_ips[0]
    seeds = ", ".join(f"{r['train_seconds']:.0f} s ({100 * r['test_accuracy']:.2f} %)"
                      for r in ttn["runs"])
    return f"""# Performance

People rerun this report on laptops, so its running time is part of its quality. `make bench`
measures where the time goes on the current machine and writes `results/bench.json` with the
machine's description; `make bench-notebooks` times `make report` with a cold and then a warm
cache. This page is written from that file (`python bench.py --write-docs`; a test checks it).
Earlier measurements: [performance-history.md](performance-history.md).

**The machine.** {machine}. Budgets are given in training images, so a figure reads on
another machine as images per second or seconds per million training images; compare only
ratios measured in one run.

## `make report`, cold and warm

One run each: the training cache deleted, then `make report` (every notebook, full profile, and
the HTML export), then `make report` again. Chapter times come from the cells' execution stamps
(kernel start-up left out); the `make report` column includes `make html`. The warm run wrote no
new cache entry: every training run and every perturbed-test prediction came from the cache.
These runs predate chapter 02's reproduction search, chapter 03's convergence study and chapter
04's training at convergence, each of which adds tens of minutes to an hour or more of training
to a cold run; run `make bench-notebooks` to measure the report as it is now.

{notebook_table(record)}

## Batch normalisation on TensorFlow's fused kernel

Keras 3's `BatchNormalization` computes the batch moments and the normalisation with separate
ops, which made it the most expensive layer of the CNNs on these CPUs. `conv_net(batch_norm=True)`
now uses `FusedBatchNorm` (mnist_report/models.py): the same computation on TensorFlow's fused
kernel, with the same weights in the same order, outputs and running statistics equal to Keras's
layer within 2·10⁻⁵ in training and inference, and the same gradients (tests/test_models.py). The
best CNN of chapter 04 (its recipe read from `results/04_cnn.json`), one epoch of
{bn['images']:,} training images per timed run, the three variants alternated, {repeats} runs each:

{batch_norm_table(record)}

{versus_none} {verdict}

## Training throughput per model

One epoch per timed run ({sizes}), through the project's `helpers.train` (uncached) and
through plain `model.fit` with Keras defaults (Adam, no callbacks, one step per call),
alternated, the ratio taken run by run. GFLOP/s
counts 6 × MACs per training image (a forward pass is 2 × MACs, the backward pass twice that).
Median (range):

{markdown_table(record)}

## Other levers, measured on the best CNN

Medians of {lever_repeats} alternated runs, one epoch each:

- **Steps per call into TensorFlow** (`configure(steps_per_execution=...)`): {chunks}. 32 stays
  the default; a test checks that it changes speed, not results.
- **Batch size with the learning rate scaled alike**: {batches} images/s, at most
  {best_batch:.2f}× the chapters' batch. What larger batches do to accuracy is the chapters'
  question, not a speed setting.
- **Processes**: two seeds trained side by side in one-thread worker processes, {side} images/s
  together; the same two seeds one after the other in one process with two threads, {turn} (both
  by wall clock, evaluation included). {processes}
- **bfloat16 mixed precision**: {bf16}

## Time to 99 %

A chapter 04 model, as `results/bench.json` records it ({ttn['net']['builder']}
{ttn['net']['arch']}, batch {ttn['recipe']['batch_size']}, {ttn['recipe']['epochs']} epochs:
{budget} training images), trained afresh per seed: {seeds}. `make bench` times the quickest
configuration that chapter 04 validated at 99 %.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=helpers.pick(3, 1))
    parser.add_argument("--skip-slow", action="store_true",
                        help="leave out the time to 99 %% and the bfloat16 accuracy check")
    parser.add_argument("--notebooks", metavar="LABEL",
                        help="record the notebooks' last execution times under LABEL "
                             "(cold or warm) in results/bench.json, and nothing else")
    parser.add_argument("--total", type=float, help="with --notebooks: make report's wall time")
    parser.add_argument("--only", choices=SECTIONS, nargs="+",
                        help="measure only these sections (the others in bench.json are kept)")
    parser.add_argument("--write-docs", action="store_true",
                        help="write docs/performance.md from results/bench.json, and nothing else")
    args = parser.parse_args()
    if args.write_docs:
        payload = json.loads((helpers.COMMITTED_RESULTS / "bench.json").read_text())
        page = helpers.ROOT / "docs" / "performance.md"
        page.write_text(performance_page(payload["results"], payload["environment"]))
        print("Wrote", page)
        return
    try:
        record = helpers.load_json("bench")
    except helpers.MissingResultsError:
        record = {}
    if args.notebooks:
        record.setdefault("notebooks", {})[args.notebooks] = {
            "make_report_seconds": args.total, "notebook_seconds": notebooks()}
    else:
        models = headline_models()
        best = models["best CNN (04)"]
        slow = not args.skip_slow and not helpers.SMOKE
        measure = {
            "training": lambda: training(models, args.repeats),
            "batch_norm": lambda: batch_norm(*best, args.repeats),
            "levers": lambda: levers(*best, args.repeats, precision_seeds=3 if slow else 0),
            "inference": lambda: inference(models),
            "time_to_99": lambda: time_to_99(*models["fast to 99 % (04)"], args.repeats)}
        for section in args.only or [s for s in SECTIONS if slow or s != "time_to_99"]:
            record[section] = measure[section]()
            record.setdefault("repeats", {})[section] = args.repeats
            helpers.save_json("bench", record)  # keep what is measured, should a later part fail
    print("Wrote", helpers.save_json("bench", record))
    if args.notebooks:
        print(f"make report, {args.notebooks}: {args.total:,.0f} s")
    else:
        print(markdown_table(record))
        print(batch_norm_table(record))


if __name__ == "__main__":
    main()
