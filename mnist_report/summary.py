"""The report's headline tables and verdicts, built only from the chapters' results files.

Chapter 05 shows them, `report/index.html` opens with them, and the README quotes them:
`python -m mnist_report.summary` rewrites the README's generated blocks (between
`<!-- generated: NAME -->` and `<!-- /generated -->`), and a test holds those blocks to
`results/`. Nothing here trains or measures; every number is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import records
from .config import ROOT, STUDENT
from .stats import fmt_pct, interval_text, signed

README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def describe_program(configuration: Mapping[str, Any]) -> str:
    """Chapter 02's screen configuration in words: 'TF 2 quickstart, relu, raw pixels, SGD,
    2 epochs'."""
    c, epochs = configuration, int(configuration["epochs"])
    return (f"{c['program']}, {c['activation']}, {c['inputs']} pixels, {c['optimizer']}, "
            f"{epochs} epoch{'s' if epochs != 1 else ''}")


def estimate_text(row) -> str:
    """A row's test accuracy and loss with their intervals (columns test_accuracy, accuracy_low,
    accuracy_high, test_loss, loss_low, loss_high): "92.04 % [91.54 %, 92.54 %], loss 0.2828
    [0.2700, 0.2955]"."""
    return (f"{fmt_pct(row.test_accuracy)} [{fmt_pct(row.accuracy_low)}, "
            f"{fmt_pct(row.accuracy_high)}], loss {row.test_loss:.4f} "
            f"[{row.loss_low:.4f}, {row.loss_high:.4f}]")


def reproduction_table(dense: records.DenseRecord | Mapping[str, Any],
                       cnn: records.CnnRecord | Mapping[str, Any] | None = None):
    """One row per number the student reported and source: first the student's own program (as
    committed, or the edit that comes closest; chapter 02), then the closest searched program
    (chapters 02 and 04). Our mean, the interval the rule reads for accuracy and loss, and
    whether both lie inside, by the calibrated rule (95 % prediction intervals for one new run).
    Without `cnn`, the dense rows only (chapter 02's own table, from its facts before they are
    saved: only its `student_program` and `reproduction` are read)."""
    import pandas as pd

    own, _, _ = _own_program(dense)
    search = _part(dense, "reproduction", records.Search)
    rows = []
    for bs in (128, 2048):
        match, closest = own[f"batch{bs}"], getattr(search, f"closest_batch{bs}")
        rows.append({"student": f"dense_batch{bs}", "source": "the student's program",
                     "configuration": match.name + (
                         "; also consistent: " + ", ".join(match.also_consistent)
                         if match.also_consistent else ""),
                     "seeds": match.runs, "accuracy": match.test_accuracy,
                     "accuracy_range": match.accuracy_interval,
                     "loss": match.test_loss, "loss_range": match.loss_interval,
                     "p": match.p, "reproduced": match.consistent})
        rows.append({"student": f"dense_batch{bs}",
                     "source": "searched (ranked on test numbers)",
                     "configuration": describe_program(closest.configuration),
                     "seeds": closest.seeds, "accuracy": closest.test_accuracy_mean,
                     "accuracy_range": closest.accuracy_interval,
                     "loss": closest.test_loss_mean, "loss_range": closest.loss_interval,
                     "p": closest.p, "reproduced": closest.consistent})
    if cnn is None:
        return pd.DataFrame(rows)
    cnn = records.coerce(records.CnnRecord, cnn, "04_cnn")
    if cnn.student_program is not None:  # mnistcnn.py with its fit() active (chapter 04)
        match = cnn.student_program.best_match
        rows.append({"student": "cnn", "source": "the student's program",
                     "configuration": match.name, "seeds": match.runs,
                     "accuracy": match.test_accuracy, "accuracy_range": match.accuracy_interval,
                     "loss": match.test_loss, "loss_range": match.loss_interval,
                     "p": match.p, "reproduced": match.consistent})
    program = cnn.reproduction.closest_program
    rows.append({"student": "cnn", "source": "closest Keras example (chapter 04)",
                 "configuration": cnn.reproduction.closest, "seeds": int(program.seeds),
                 "accuracy": program.test_accuracy,
                 "accuracy_range": (program.accuracy_low, program.accuracy_high),
                 "loss": program.test_loss, "loss_range": (program.loss_low, program.loss_high),
                 "p": program.p, "reproduced": program.reproduced})
    return pd.DataFrame(rows)


def _part(record: Any, name: str, cls: type) -> Any:
    """The part `name` of a chapter record, or of a facts mapping (built and checked as `cls`)."""
    if isinstance(record, Mapping):
        return records.build(cls, record[name], name)
    return getattr(record, name)


def _own_program(dense: Any) -> tuple[dict[str, records.StudentMatch], str, str]:
    """(best match per batch size, pair, repository) of the student's mnist.py, from chapter 02's
    record or from its facts while it is still computing them (before `final` is known)."""
    if isinstance(dense, Mapping):
        program = dense["student_program"]
        return ({k: records.build(records.StudentMatch, v, f"student_program.best_match.{k}")
                 for k, v in program["best_match"].items()}, program["pair"],
                program["repository"])
    program = dense.student_program
    return program.best_match, program.pair, program.repository


STUDENT_LABELS = {"dense_batch128": "dense network, batch 128",
                  "dense_batch2048": "dense network, batch 2048", "cnn": "CNN"}


def reproduction_markdown(dense: records.DenseRecord | Mapping[str, Any],
                          cnn: records.CnnRecord | Mapping[str, Any] | None = None) -> str:
    """The reproduction table as Markdown, with the sentence on the batch-size pair (without
    `cnn`: the dense rows only)."""
    lines = ["| the student's number | source | program | runs | our test accuracy (95 % "
             "prediction interval) | our test loss (95 % prediction interval) | consistent? |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in reproduction_table(dense, cnn).itertuples():
        s = STUDENT[r.student]
        p = "" if r.p != r.p else ", p > 0.99" if r.p > 0.99 else f", p = {r.p:.2g}"
        lines.append(
            f"| {STUDENT_LABELS[r.student]}: {fmt_pct(s['accuracy'])}, loss {s['loss']} | "
            f"{r.source} | {r.configuration} | {r.seeds} | {fmt_pct(r.accuracy)} "
            f"({interval_text(*r.accuracy_range)}) | {r.loss:.4f} "
            f"({interval_text(*r.loss_range, pct=False)}) | "
            f"{'yes' if r.reproduced else '**no**'}{p} |")
    _, pair, repository = _own_program(dense)
    search = _part(dense, "reproduction", records.Search)
    both = (f"`mnist.py` gives both dense numbers with only the batch size changed ({pair})"
            if pair else "No version of `mnist.py` we ran gives both dense numbers with only the "
            "batch size changed")
    if cnn is not None:
        cnn = records.coerce(records.CnnRecord, cnn, "04_cnn")
    lines += ["", f"{both}. The student's program is [{repository}](https://github.com/"
              f"{repository}), run by the report's engine at every epoch of its 100 "
              "(chapter 02). Dense rows use the calibrated rule: accuracy and loss inside 95 % "
              "prediction intervals for one new run (each at 97.5 %), p the combined p-value. A "
              f"searched program was picked from {search.cells_searched} cells per batch "
              "size by the student's test numbers themselves, so a pass reads \"consistent "
              "with\"; so was the student's own program's epoch (or edit)."
              + ("" if cnn is None else
                 " The CNN rows use the same rule: the student's own mnistcnn.py at the epoch "
                 "that comes closest, then the closest of the Keras examples chapter 04 tried."
                 if cnn.student_program is not None else
                 " The CNN row is the closest of the Keras examples chapter 04 tried, by the same "
                 "rule; the student's own mnistcnn.py is not run yet.")]
    return "\n".join(lines)


def models_markdown(models, machine: str) -> str:
    """The comparison table (results/05_models.csv, written by chapter 05) as Markdown: accuracy
    with its two uncertainties in separate columns, and the costs; `machine` is where `make
    bench` timed the training."""
    lines = ["| model | budget | test accuracy | spread over seeds (95 % t) | test-set sampling "
             "(95 % bootstrap) | seeds | training images | MACs per image | training time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in models.itertuples():
        seeds = (interval_text(r.seed_ci_low, r.seed_ci_high) if r.seeds > 1 else "single run")
        lines.append(f"| {r.model} | {r.budget} | {fmt_pct(r.accuracy)} | {seeds} | "
                     f"{interval_text(r.test_ci_low, r.test_ci_high)} | {r.seeds} | "
                     f"{r.images_seen:,.0f} | {r.macs:,.0f} | {r.train_seconds:,.0f} s |")
    lines += ["", "Accuracy is on MNIST's 10,000 test images, as a mean over seeds. The spread "
              "over seeds says how much retraining moves it, test-set sampling how much another "
              "10,000 digits would; a single run has only the second. Training time is `make "
              f"bench`'s seconds per training image, measured with each model alone on {machine}, "
              "times the images it was trained on; the ensemble's is the sum of its members'."]
    return "\n".join(lines)


def verdict_markdown(verdicts) -> str:
    """The claim-by-claim verdict, one line each (the evidence is in chapter 05): records'
    Verdicts, or chapter 05's mappings before it saves them."""
    verdicts = [records.coerce(records.Verdict, v) for v in verdicts]
    return "\n".join(f"- **{v.claim}** {v.verdict}" for v in verdicts)


def _pts(ci) -> str:
    return f"{signed(100 * ci[0])} points [{signed(100 * ci[1])}, {signed(100 * ci[2])}]"


def verdicts(dense: records.DenseRecord | Mapping[str, Any],
             sweep: records.SweepRecord | Mapping[str, Any],
             cnn: records.CnnRecord | Mapping[str, Any],
             compared: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each of the student's claims, a verdict and its evidence, from the chapters' records.
    `compared` holds what chapter 05 computes: "gaps" (label -> (difference, low, high) of the
    CNNs over the MLP, Welch intervals over seeds), "holm_p" (label -> Holm-adjusted p) and
    "shift4" (label -> accuracy at a 4-pixel shift)."""
    dense = records.coerce(records.DenseRecord, dense, "02_dense_network")
    sweep = records.coerce(records.SweepRecord, sweep, "03_batch_size_sweep")
    cnn = records.coerce(records.CnnRecord, cnn, "04_cnn")
    conv = sweep.convergence
    gap = conv.gap_128_minus_2048
    student_gap = STUDENT["cnn"]["accuracy"] - STUDENT["dense_batch2048"]["accuracy"]
    best_gap, level_gap = compared["gaps"]["best CNN"], compared["gaps"]["student-level CNN"]
    paired = cnn.permutation_paired
    aug = cnn.augmentation_rows
    own = dense.student_program
    final, matches = own.final, own.best_match
    both = (f"only {own.pair} gives both" if own.pair else
            "no version of it gives both with only the batch size changed")
    return [
        {"claim": "Batch size strongly drives accuracy (12.63 % at 128, 92.06 % at 2048).",
         "verdict": "Not as stated.",
         "evidence": f"The student's own mnist.py trains normally at both batch sizes: "
         f"{fmt_pct(final['128']['test_accuracy'])} at 128 and "
         f"{fmt_pct(final['2048']['test_accuracy'])} at 2048 after its 100 epochs. 92.06 % is "
         f"{matches['batch2048'].name} at batch 2048; 12.63 % is best accounted for by "
         f"{matches['batch128'].name}; {both} (chapter 02). Trained until validation "
         f"stops improving, with the learning rate tuned per batch size, batch 128 minus batch "
         f"2048 is {signed(100 * gap.mean)} points [{signed(100 * gap.ci95[0])}, "
         f"{signed(100 * gap.ci95[1])}] (95 % t-interval over {conv.seeds} seeds; chapter 03). "
         "Large "
         "differences appear only under fixed budgets of epochs or steps, which favour one side "
         "by construction."},
        _cnn_against_dense(dense, cnn, compared, best_gap, level_gap, student_gap),
        {"claim": "...because they capture spatial structure.",
         "verdict": "Yes, with a limit.",
         "evidence": f"Permuting the pixels costs the student-level CNN {_pts(paired.cnn_drop)} "
         f"and the MLP {_pts(paired.mlp_drop)} (paired by seed, chapter 04): the CNN's lead "
         f"lives in the pixel layout. Its tolerance of shifts is partial: at a 4-pixel shift it "
         f"keeps {fmt_pct(compared['shift4']['student-level CNN'])}, the MLP "
         f"{fmt_pct(compared['shift4']['chosen MLP'])}; the best CNN's "
         f"{fmt_pct(compared['shift4']['best CNN'])} comes with its augmentation and deeper "
         "network together (chapter 04)."},
        {"claim": "Tuning the CNN and adding augmentation would help.",
         "verdict": "A larger recipe helps; augmentation alone is not measurable with three seeds.",
         "evidence": f"The best CNN (deeper, batch-normalised, augmented, a 30-epoch one-cycle "
         f"schedule) gains {_pts(cnn.best_single.gain_over_student_ci95)} over the "
         f"student-level CNN (over seeds): architecture and recipe together, not tuning alone. "
         f"Augmentation changes validation accuracy by {_pts(aug[max(aug)].val_gain_ci95)} "
         f"after {max(aug)} epochs (paired by seed, chapter 04); {cnn.climb_seeds} seeds "
         f"detect only effects of {100 * cnn.aug_detectable:.2f} points or more."},
    ]


def _cnn_against_dense(dense, cnn, compared, best_gap, level_gap, student_gap) -> dict[str, str]:
    """Verdict 2. With chapter 05's 2 x 2 (`compared["arch_recipe"]`: CNN - MLP with and without
    augmentation on the best CNN's recipe, paired by seed), the architecture on equal terms;
    without it, the chapters' own recipes."""
    student = (f"The student's numbers suggested {100 * student_gap:.2f} points: their dense "
               f"network stopped at {fmt_pct(STUDENT['dense_batch2048']['accuracy'])}, far "
               f"below the {fmt_pct(dense.mlp.test_accuracy_mean)} a tuned MLP reaches "
               "(chapter 02).")
    holm = (f"Holm-adjusted p {compared['holm_p']['student-level CNN']:.1g} and "
            f"{compared['holm_p']['best CNN']:.1g}")
    if "arch_recipe" not in compared:
        return {"claim": "CNNs beat dense networks.",
                "verdict": "Yes; by how much depends on the recipe.",
                "evidence": f"The student-level CNN (the Keras example's recipe, not tuned) leads "
                f"the MLP (tuned on validation) by {_pts(level_gap)}; the best CNN leads it by "
                f"{_pts(best_gap)} (Welch intervals over seeds; {holm}), but it trained on "
                f"{cnn.best_single.images_seen:,} augmented images against the MLP's "
                f"{dense.mlp.images_seen:,} plain ones, so part of that lead is the recipe. "
                + student}
    arch = compared["arch_recipe"]
    plain, augmented = arch["CNN − MLP, plain"], arch["CNN − MLP, augmented"]
    if plain[1] > 0 and augmented[1] > 0:
        verdict = "Yes, on equal terms, with and without augmentation."
    elif plain[1] > 0:
        verdict = "Yes on plain digits; with augmentation the lead is not shown."
    else:
        verdict = "Not shown on equal terms."
    mlp = compared["mlp_augmented"]
    return {"claim": "CNNs beat dense networks.", "verdict": verdict,
            "evidence": f"Trained on the same recipe (the best CNN's one-cycle schedule, "
            f"{cnn.best_single.images_seen:,} training images), the CNN leads the MLP (its peak "
            f"learning rate tuned on validation) by {_pts(plain)} without augmentation and by "
            f"{_pts(augmented)} with it (paired by seed over {compared['arch_seeds']} seeds; "
            f"chapter 05). Augmentation moves the MLP by "
            f"{signed(100 * arch['augmentation, MLP'][0])} points, to {fmt_pct(mlp[0])} "
            f"[{fmt_pct(mlp[1])}, {fmt_pct(mlp[2])}], and the CNN by "
            f"{signed(100 * arch['augmentation, CNN'][0])}. On the chapters' own recipes the "
            f"student-level CNN leads the MLP by {_pts(level_gap)} and the best CNN by "
            f"{_pts(best_gap)} (Welch intervals over seeds; {holm}). " + student}


def fragments(results: Path | None = None) -> dict[str, str]:
    """The README's generated blocks, from the results files in `results` (default: the
    committed ones)."""
    import json

    import pandas as pd

    from .config import COMMITTED_RESULTS

    folder = Path(results or COMMITTED_RESULTS)

    def load(name):
        return records.of(name, json.loads((folder / f"{name}.json").read_text())["results"])

    dense, cnn, comparison = load("02_dense_network"), load("04_cnn"), load("05_comparison")
    return {"reproduction": reproduction_markdown(dense, cnn),
            "models": models_markdown(pd.read_csv(folder / "05_models.csv"),
                                      comparison.timing_machine),
            "verdicts": verdict_markdown(comparison.verdict)}


def render(text: str, blocks: Mapping[str, str]) -> str:
    """`text` with each generated block replaced by its fragment (unknown names: an error)."""
    def fill(match):
        if match.group(2) not in blocks:
            raise KeyError(f"no fragment for the README block {match.group(2)!r}")
        return f"{match.group(1)}{blocks[match.group(2)]}\n{match.group(4)}"

    return BLOCK.sub(fill, text)


if __name__ == "__main__":  # `python -m mnist_report.summary`: regenerate the README's blocks
    README.write_text(render(README.read_text(), fragments()))
    print(f"{README.name}: generated blocks rewritten from results/")
