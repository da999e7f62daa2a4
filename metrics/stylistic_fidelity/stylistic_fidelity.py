"""stylistic_fidelity: how close generated posts are to real ones (a thin wrapper over blueprint.metrics)."""

import evaluate

from blueprint.metrics.bertscore import BertScorer
from blueprint.metrics.evaluate_support import metric_info
from blueprint.metrics.suite import TextEmbedder, score_texts

_DESCRIPTION = """\
Compares generated texts with real ones on the rows whose reference has a text. Set metrics, from
sentence embeddings: avg_cosine (cosine of the mean embeddings), max_cosine and mean_max_cosine (best
cosine of each generated text to any real text: the max and the mean), embedding_js (Jensen-Shannon
divergence, log2, of the within-set pairwise cosine-distance histograms), tfidf_jaccard (Jaccard of the
top-100 TF-IDF terms, one document per cluster and source). Pair metrics: rouge1, rouge2, rougeL
(rouge-score F1) and bertscore_f1 (bert-score F1). With `clusters`, each is also computed per cluster and
averaged (`cluster_<name>`), with the table in `per_cluster`.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): generated texts (None counts as the empty string).
    references (`list` of `str`): real texts; rows without one are left out.
    clusters (`list` of `int`, optional): the persona cluster of each row.
    model (`str`, optional): embedding model: "default" (the packaged all-MiniLM-L6-v2), a local folder
        or a Hub id. BERTScore uses the same model.
    bertscore (`bool`, optional): compute BERTScore (default True).
    cache_dir (`str`, optional): where reference embeddings are cached; None (default) caches nothing.
    bootstrap (`int`, optional): bootstrap resamples for confidence intervals (0: none).
    seed (`int`, optional): seed of the bootstrap.
Returns:
    avg_cosine, max_cosine, mean_max_cosine, embedding_js, tfidf_jaccard, rouge1, rouge2, rougeL,
    bertscore_f1 (`float`), their cluster_ means, per_cluster (`dict`), ci (`dict`).
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("metrics/stylistic_fidelity")
    >>> posts = ["Axe the carbon tax now", "Housing is the issue this election", "Vote on April 28"]
    >>> out = metric.compute(predictions=posts, references=posts)
    >>> round(out["avg_cosine"], 4), out["embedding_js"], out["tfidf_jaccard"], round(out["rougeL"], 4)
    (1.0, 0.0, 1.0, 1.0)
    >>> round(out["bertscore_f1"], 4)
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class StylisticFidelity(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, clusters=None, model="default", bertscore=True, cache_dir=None,
                 bootstrap=0, seed=0):
        scorer = BertScorer(model, cache_dir=cache_dir) if bertscore else None
        return score_texts(references, predictions, clusters, embedder=TextEmbedder(model, cache_dir=cache_dir),
                           bert_scorer=scorer, bootstrap=bootstrap, seed=seed)
