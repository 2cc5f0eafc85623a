"""The shared code of the MNIST report, one module per responsibility.

    config     paths, the profile, the cache folder, seeds, the student's numbers; `configure()`
    data       MNIST (verified by digests), the fixed validation split, perturbed images
    models     builders (dense_net, conv_net), Net, the fused batch-norm layer, ensembles, MACs
    training   Recipe, TrainResult, train, train_many; the training path the cache key covers
    cache      cache keys (code fingerprints), the on-disk store, lookup: cache -> ledger
    ledger     the committed run ledger (results/ledger/): compact records a fresh clone replays
    probes     collapse diagnostics, gradient noise scale, saliency, perturbed accuracy
    analyses   analyses that need a run's weights, cached under the run's key (replay too)
    results    results files and the environment record stored with them
    scaling    batch-size scaling of a learning-rate sweep: divergence, bracketing the optimum,
               the best rate's regimes, steps to a target and the S_min (1 + B_crit/B) fit
    collapse   runs that collapse or diverge: counts with exact intervals, Fisher comparisons
               with their detectable difference, grid cells consistent with a recorded number
    stats      intervals (seeds, test images), tests (Welch, McNemar, Holm), calibration, Pareto,
               the calibrated reproduction rule, convergence, power
    facts      a chapter's numbers in one record, prose templates, claims checked where made
    student    the student's programs (ts-39/MNIST) as recipes, their provenance and numbers
    student_runner  the student's programs standalone (Keras, NumPy, scikit-learn), any version
    summary    the headline tables and verdicts from results/: chapter 05, report, README blocks
    plots      the report's plot style, save_fig, image grids, curves, confusion matrices
    notebook   the chapters' setup cell (readable tables) and their cached-runs line
    report     the HTML export

Heavy libraries (TensorFlow, matplotlib, seaborn, scipy) are imported inside the functions that
use them, so importing the package stays fast. The notebooks import it through helpers.py.
"""
