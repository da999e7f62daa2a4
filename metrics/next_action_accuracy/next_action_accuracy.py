"""next_action_accuracy: accuracy and macro-F1 of predicted next actions (a thin wrapper over blueprint.metrics)."""

import evaluate

from blueprint.metrics.evaluate_support import metric_info
from blueprint.metrics.suite import DEFAULT_RARE, score_actions

_DESCRIPTION = """\
Scores predicted next actions (one of the 13 BluePrint actions: post, reply, quote, post_update,
post_delete, like, unlike, repost, unrepost, follow, unfollow, block, unblock) against the real ones:
accuracy, macro-F1 as normally defined (the mean of per-action F1; the paper's reference code reports
accuracy under the name F1), macro-F1 over the rare actions, per-action precision, recall and F1, and
the confusion matrix. With `clusters`, every number is also computed per persona cluster and averaged
(`cluster_<name>`), with the per-cluster table in `per_cluster`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): predicted actions.
    references (`list` of `str`): real actions.
    clusters (`list` of `int`, optional): the persona cluster of each row.
    rare_actions (`list` of `str`, optional): the rare set for `rare_macro_f1`; default post_update,
        post_delete, unlike, unrepost, unfollow, block, unblock.
    bootstrap (`int`, optional): bootstrap resamples for confidence intervals (0: none).
    seed (`int`, optional): seed of the bootstrap.
Returns:
    accuracy (`float`), macro_f1 (`float`), rare_macro_f1 (`float`, nan when no rare action occurs),
    per_action (`dict`), confusion_matrix (`list`), cluster_accuracy, cluster_macro_f1,
    cluster_rare_macro_f1 (`float`), per_cluster (`dict`), ci (`dict` of [low, high]).
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("metrics/next_action_accuracy")
    >>> out = metric.compute(predictions=["like", "like", "post", "block"],
    ...                      references=["like", "reply", "post", "unblock"])
    >>> round(out["accuracy"], 2), round(out["macro_f1"], 3)
    (0.5, 0.333)
    >>> out = metric.compute(predictions=["like", "post", "post", "like"],
    ...                      references=["like", "post", "reply", "like"], clusters=[0, 0, 1, 1])
    >>> out["per_cluster"][1]["accuracy"], out["cluster_accuracy"]
    (0.5, 0.75)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NextActionAccuracy(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, clusters=None, rare_actions=None, bootstrap=0, seed=0):
        return score_actions(references, predictions, clusters,
                             rare=tuple(rare_actions) if rare_actions is not None else DEFAULT_RARE,
                             bootstrap=bootstrap, seed=seed)
