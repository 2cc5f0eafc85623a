"""Chapter 05's analyses (mnist_report/comparison.py) on small hand-worked inputs."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mnist_report import comparison, plots, stats  # noqa: E402
from mnist_report.models import Net, dense_net  # noqa: E402
from mnist_report.training import Recipe, headline  # noqa: E402


def entry(lr=1e-3, epochs=10):
    """How a chapter records a model's training (a record's `recipe` field)."""
    return headline(Net(dense_net, hidden=(8,)),
                    Recipe(batch_size=128, learning_rate=lr, epochs=epochs), [0, 1])


def test_fairness_checks_list_neighbours_then_doubled_budgets_longest_first():
    entries = {"a": entry(epochs=10), "b": entry(epochs=30)}
    checks = comparison.fairness_checks(entries, {"a": (3e-4, 3e-3)}, first="b")
    assert checks == [("b", "epochs", 60), ("a", "learning rate", 3e-4),
                      ("a", "learning rate", 3e-3), ("a", "epochs", 20)]
    net, recipe, seed = comparison.check_spec(entries["a"], "learning rate", 3e-3, 1)
    assert (recipe.learning_rate, recipe.epochs, seed) == (3e-3, 10, 1)
    assert net == Net(dense_net, hidden=(8,))


def test_fairness_table_and_the_checks_that_beat_a_model():
    entries = {"a": entry(lr=1e-3)}
    runs = [SimpleNamespace(val_accuracy=v) for v in (0.97, 0.98, 0.99, 0.99)]
    tried = comparison.mean_by_change(runs, 2)
    assert tried == pytest.approx([0.975, 0.99])
    fair = comparison.fairness_table([("a", "learning rate", 3e-4), ("a", "epochs", 20)], tried,
                                     entries, {"a": 0.985}, {"a": 0.002})
    assert fair["chosen"].tolist() == [1e-3, 10]
    assert fair["difference (points)"].tolist() == pytest.approx([-1.0, 0.5])
    beaten = comparison.beaten_checks(fair)
    assert len(beaten) == 1  # +0.5 points against a seed SD of 0.2
    assert comparison.budget_text(beaten, "a") == "beaten by 20 epochs (+0.50)"
    assert comparison.budget_text(beaten, "other") == "unbeaten by its checks"
    test = {"verdict": "converged", "epochs": 10, "difference": -0.0004}
    assert comparison.budget_text(beaten, "a", test) == "converged at 10 → 20 epochs (−0.04)"
    both = comparison.beaten_checks(fair.assign(**{"difference (points)": [0.5, 0.5]}))
    assert len(both) == 2  # the doubled budget's check gives way to the convergence test
    assert (comparison.budget_text(both, "a", test)
            == "converged at 10 → 20 epochs (−0.04); beaten by lr 0.0003 (+0.50)")


def test_model_row_keeps_seed_and_test_intervals_apart():
    labels = np.array([0, 1, 1, 0])
    probas = [np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]]),
              np.array([[0.8, 0.2], [0.1, 0.9], [0.7, 0.3], [0.6, 0.4]])]
    model = SimpleNamespace(count_params=lambda: 42)
    row = comparison.model_row("m", "converged, tuned", model, probas, labels, 1000, 0.01,
                               {"latency_ms": 1.5, "throughput": 900}, macs=7)
    assert row["accuracy"] == pytest.approx(0.75)  # 3 of 4, and 3 of 4
    assert row["seed_ci"] == pytest.approx(stats.mean_ci([0.75, 0.75])[1:])
    assert row["train_seconds"] == pytest.approx(10) and row["params"] == 42
    assert row["test_loss"] == pytest.approx(np.mean([
        -np.log([0.9, 0.8, 0.6, 0.3]).mean(), -np.log([0.8, 0.9, 0.3, 0.6]).mean()]))
    assert row["errors"] == pytest.approx(1.0)
    table = pd.DataFrame([row]).set_index("model")
    shown = comparison.display_table(table)
    assert shown.loc["m", "test accuracy"] == "75.00 %"
    assert shown.loc["m", "spread over seeds (95 % t)"] == stats.interval_text(*row["seed_ci"])
    assert stats.interval_text(0.9949, 0.996) == "99.49–99.60 %"
    assert stats.interval_text(0.0245, 0.0272, pct=False) == "0.0245–0.0272"
    flat = comparison.flat_table(table)
    assert {"seed_ci_low", "test_ci_high"} <= set(flat.columns)
    assert comparison.table_record(table)["m"]["macs"] == 7


def test_welch_family_is_holm_adjusted_and_members_are_tested_by_mcnemar():
    acc = {"a": np.array([0.97, 0.971, 0.972]), "b": np.array([0.98, 0.981, 0.983]),
           "c": np.array([0.98, 0.982, 0.981])}
    welch = comparison.welch_family(acc, [("a", "b"), ("b", "c")])
    assert welch.comparison.tolist() == ["b − a", "c − b"]
    assert welch["p (Holm)"].tolist() == pytest.approx(list(stats.holm(welch["p (Welch)"])))
    assert welch["difference (points)"][0] == pytest.approx(100 * (acc["b"] - acc["a"]).mean())
    ensemble = np.array([True] * 8 + [False] * 2)
    members = [np.array([True] * 7 + [False] * 3), ensemble.copy()]
    table = comparison.versus_members(ensemble, members)
    assert table.only_a_correct.tolist() == [1, 0]
    assert table["p (Holm)"].tolist() == pytest.approx(list(stats.holm(table.p_value)))


def test_missed_by_most_and_overconfidence():
    correct = {"m": np.array([[True, False, False], [True, False, True], [False, False, True]])}
    assert comparison.missed_by_most(correct)["m"].tolist() == [False, True, False]
    probas = [np.array([[0.9, 0.1], [0.6, 0.4]])]
    assert comparison.overconfidence(probas, np.array([0, 1])) == pytest.approx(0.75 - 0.5)


def test_perturbation_table_and_fronts():
    runs = {"m": [SimpleNamespace(seed=0), SimpleNamespace(seed=1)]}
    table = comparison.perturbation_table(
        runs, lambda r, kind, levels: [0.9 - r.seed * 0.1] * len(levels),
        {"rotation": [0, 10], "noise": [0.0]})
    assert len(table) == 2 * 3 and set(table.perturbation) == {"rotation", "noise"}
    models = pd.DataFrame({"accuracy": [0.92, 0.985, 0.99, 0.98], "macs": [8e3, 6e6, 1e6, 2e6]},
                          index=["linear", "mlp", "cnn", "worse"])
    assert comparison.fronts(models, ["macs"]) == {"macs": ["linear", "cnn"]}


def test_plot_pareto_fills_the_front_and_hollows_the_rest():
    models = pd.DataFrame({"error": [0.08, 0.015, 0.01], "macs": [8e3, 6e6, 1e6]},
                          index=["linear", "mlp", "cnn"])
    ax = plots.plot_pareto(models, "macs", "error", ["linear", "cnn"])
    faces = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert faces[1] == (1.0, 1.0, 1.0, 1.0) and faces[0] != faces[1]  # the MLP is beaten
    assert ax.get_lines()[0].get_xdata().tolist() == [8e3, 1e6]  # the front, by cost
    plt.close("all")


def test_plot_reliability_can_show_counts_and_a_given_ece():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=200)
    labels = rng.integers(0, 3, 200)
    ax = plots.plot_reliability(proba, labels, label="pooled", counts=True, ece=0.0123)
    assert "ECE 1.23 %" in ax.get_legend().get_texts()[0].get_text()
    table, _ = stats.calibration(proba, labels)
    assert len(ax.texts) == len(table)
    plt.close("all")


def test_ece_interval_matches_stats_calibration_and_covers_it():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    probas = [rng.dirichlet(np.ones(3) * a, size=500) for a in (0.5, 2.0)]
    out = comparison.ece_interval(probas, labels, resamples=200)
    assert out["ece"] == pytest.approx(np.mean([stats.calibration(p, labels)[1]
                                                for p in probas]))
    assert out["low"] < out["ece"] < out["high"]


def test_welch_family_states_what_its_seeds_can_detect():
    acc = {"a": np.array([0.97, 0.971, 0.972]), "b": np.array([0.98, 0.981, 0.983])}
    table = comparison.welch_family(acc, [("a", "b")])
    sd = np.sqrt((np.var(acc["a"], ddof=1) + np.var(acc["b"], ddof=1)) / 2)
    assert table["detectable (points)"][0] == pytest.approx(
        100 * stats.minimum_detectable_effect(sd, 3, paired=False))


def test_a_two_by_two_and_its_paired_contrasts():
    def runs(base, step):
        return [SimpleNamespace(seed=s, test_accuracy=base + step * s, val_accuracy=base,
                                images_seen=100) for s in range(3)]
    groups = {("MLP", "plain"): runs(0.985, 0.001), ("MLP", "augmented"): runs(0.990, 0.001),
              ("CNN", "plain"): runs(0.992, 0.0005), ("CNN", "augmented"): runs(0.995, 0.0005)}
    table = comparison.factorial_table(groups)
    assert len(table) == 4 and table.seeds.tolist() == [3] * 4
    assert table.test_accuracy[0] == pytest.approx(0.986)
    effects = comparison.paired_effects(groups, {
        "CNN - MLP, plain": (("MLP", "plain"), ("CNN", "plain")),
        "CNN - MLP, augmented": (("MLP", "augmented"), ("CNN", "augmented"))})
    d = [0.992 + 0.0005 * s - (0.985 + 0.001 * s) for s in range(3)]
    assert effects.loc["CNN - MLP, plain", ["difference", "low", "high"]].tolist() == (
        pytest.approx(list(stats.mean_ci(d))))
    assert effects.loc["CNN - MLP, plain", "detectable"] == pytest.approx(
        stats.minimum_detectable_effect(np.std(d, ddof=1), 3))


def test_tune_peak_extends_past_an_edge_until_the_best_is_bracketed():
    best = 1e-2
    calls = []

    def train(lr, seed):
        calls.append((lr, seed))
        return SimpleNamespace(val_accuracy=0.99 - abs(np.log10(lr / best)) / 100 - seed * 1e-4)

    out = comparison.tune_peak(train, [3e-4, 1e-3, 3e-3, 1e-2, 3e-2], [0, 1], [1e-3, 3e-3])
    assert out["rate"] == 1e-2 and out["bracketed"]
    assert sorted({lr for lr, _ in calls}) == [1e-3, 3e-3, 1e-2, 3e-2]  # stops once bracketed
    edge = comparison.tune_peak(train, [1e-3, 3e-3, 1e-2], [0], [1e-3, 3e-3])
    assert edge["rate"] == 1e-2 and not edge["bracketed"]  # the grid ended at the best


def test_temperature_calibration_fits_on_validation_and_the_table_averages_runs():
    rng = np.random.default_rng(0)

    def draw(n, factor):  # labels drawn from softmax(logits); predictions factor times too sharp
        logits = rng.normal(0, 1.5, (n, 10))
        truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = (truth.cumsum(1) > rng.random((n, 1))).argmax(1)
        sharp = np.exp(factor * logits)
        return sharp / sharp.sum(1, keepdims=True), y

    (val, y_val), (test, y_test) = draw(4000, 3.0), draw(4000, 3.0)
    over = stats.temperature_calibration(val, y_val, test, y_test)
    assert over["temperature"] == pytest.approx(3.0, rel=0.1)  # fitted on validation
    assert over["ece_scaled"] < over["ece"] / 3 and over["nll_scaled"] < over["nll"]
    assert over["brier_scaled"] < over["brier"] and over["overconfidence"] > 0.05
    assert abs(over["overconfidence_scaled"]) < 0.02
    assert over["error"] == pytest.approx(1 - (test.argmax(1) == y_test).mean())
    (val_fine, y_fine), _ = draw(4000, 1.0), None
    wrong = stats.temperature_calibration(val_fine, y_fine, test, y_test)  # validation unlike test
    assert wrong["temperature"] == pytest.approx(1.0, abs=0.1) and wrong["nll_scaled"] > over[
        "nll_scaled"]
    table = comparison.calibration_table({"over": [over, wrong],
                                          "perfect": [{**over, "error": 0.0}]})
    assert table.loc["over", "runs"] == 2
    assert table.loc["over", "temperature"] == pytest.approx(
        (over["temperature"] + wrong["temperature"]) / 2)
    assert table.loc["over", "over_per_error"] == pytest.approx(
        table.loc["over", "overconfidence"] / table.loc["over", "error"])
    assert np.isnan(table.loc["perfect", "over_per_error"])  # no errors: no ratio


def _converging(seed, epochs, val, test=0.99):
    return SimpleNamespace(seed=seed, recipe=Recipe(batch_size=128, epochs=epochs),
                           val_accuracy=val, test_accuracy=test)


def test_convergence_test_pairs_runs_by_seed_whatever_their_order():
    chosen = [_converging(s, 10, 0.98 + 1e-4 * s) for s in range(3)]
    doubled = [_converging(s, 20, 0.98 + 1e-4 * s + d, test=0.991)
               for s, d in reversed(list(enumerate((0.0005, 0.0006, 0.0004))))]
    t = comparison.convergence_test(chosen, doubled, margin=0.002)
    assert t["verdict"] == "converged" and t["seeds"] == 3 and t["epochs"] == 10
    assert t["difference"] == pytest.approx(0.0005) and t["test_change"] == pytest.approx(0.001)
    still = [_converging(s, 20, 0.98 + 1e-4 * s + d) for s, d in enumerate((0.004, 0.005, 0.006))]
    assert comparison.convergence_test(chosen, still, 0.002)["verdict"] == "still improving"


def test_convergence_test_refuses_unpaired_seeds_and_budgets_not_doubled():
    chosen = [_converging(s, 10, 0.98) for s in range(3)]
    with pytest.raises(ValueError, match="same seeds"):
        comparison.convergence_test(chosen, [_converging(s, 20, 0.98) for s in (0, 1, 3)], 0.002)
    with pytest.raises(ValueError, match="same seeds"):
        comparison.convergence_test(chosen + chosen[:1],
                                    [_converging(s, 20, 0.98) for s in range(3)], 0.002)
    with pytest.raises(ValueError, match="twice"):
        comparison.convergence_test(chosen, [_converging(s, 30, 0.98) for s in range(3)], 0.002)
    with pytest.raises(ValueError, match=">= 3 seeds"):
        comparison.convergence_test(chosen[:2], [_converging(s, 20, 0.98) for s in range(2)],
                                    0.002)


def test_convergence_table_reads_tests_and_records_alike():
    table = comparison.convergence_table({"m": {
        "difference": -0.0005, "low": -0.0022, "high": 0.0013, "margin": 0.002,
        "verdict": "undecided", "seeds": 5, "epochs": 10}})
    row = table.iloc[0]
    assert row["epochs"] == "10 → 20" and row["95 % interval"] == "[−0.22, +0.13]"
    assert row["validation change (points)"] == "−0.05" and row["margin (points)"] == "±0.20"
