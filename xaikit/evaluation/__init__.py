"""``xk.evaluation``: measuring explanations (notebooks ``11_evaluation_properties``,
``12_evaluation_selectivity`` and ``13_evaluation_sanity_localisation``).

One concept per module:

- :mod:`.properties` - conservation (also per LRP layer) and positivity;
- :mod:`.continuity` - explanation change under small input shifts (Montavon et al. 2018);
- :mod:`.selectivity` - pixel-flipping / region perturbation curves and AOPC;
- :mod:`.localisation` - relevance mass, relevance rank accuracy, pointing game on object masks;
- :mod:`.randomisation` - cascading / independent layer randomisation, random logit;
- :mod:`.complexity` - roughness, sparseness (Gini) and complexity (entropy) of a heatmap;
  variation and autocorrelation of a signal;
- :mod:`.robustness` - max-sensitivity and local Lipschitz estimate under random input noise;
- :mod:`.similarity` - Spearman rank correlation and SSIM between heatmaps;
- :mod:`.intervals` - 95 % intervals of proportions (Wilson) and means (Student t);
- :mod:`.metrics` - the registry: every score with its direction and reference;
- :mod:`.selection` - grid search of a method's settings maximising a score;
- :mod:`.table` - many methods x many metrics in one tidy table.

Quantus (0.6.0) is the cross-check, imported only through :func:`import_quantus` (numpy-2 shim).
"""
from ._quantus import import_quantus
from .complexity import autocorrelation, complexity, path_variation, roughness, sparseness
from .continuity import continuity, continuity_profile, max_toy_model, shift
from .intervals import mean_interval, proportion_interval
from .localisation import pointing_game, relevance_mass, relevance_rank
from .metrics import CONTROLS, METRICS, Metric
from .properties import conservation, explained_logit, lrp_layer_sums, positivity
from .randomisation import random_logit, randomisation_test, randomised_models
from .robustness import local_lipschitz, max_sensitivity, robustness_ratios
from .selection import Selection, select
from .selectivity import aopc, patch_ranks, pixel_flipping, road_fill
from .similarity import spearman, ssim
from .table import evaluate

__all__ = [
    "CONTROLS", "METRICS", "Metric", "Selection", "aopc", "autocorrelation", "complexity",
    "conservation", "continuity", "continuity_profile", "evaluate", "explained_logit",
    "import_quantus", "local_lipschitz", "lrp_layer_sums", "max_sensitivity", "max_toy_model",
    "mean_interval", "proportion_interval",
    "patch_ranks", "path_variation", "pixel_flipping", "pointing_game", "positivity",
    "random_logit", "randomisation_test", "randomised_models", "relevance_mass",
    "relevance_rank", "road_fill", "robustness_ratios", "roughness", "select", "shift", "sparseness",
    "spearman", "ssim",
]
