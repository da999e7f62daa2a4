"""distributional_fidelity: does a model act and write like its population (a thin wrapper over blueprint.metrics)."""

import evaluate
import numpy as np

from blueprint.metrics.evaluate_support import metric_info
from blueprint.metrics.suite import TextEmbedder, score_distribution
from blueprint.metrics.text import TermCounts

_DESCRIPTION = """\
action_js: Jensen-Shannon divergence (log2) between the predicted and the real distributions of the 13
actions (0 is a perfect match). diagonality: the paper's persona specificity, the mean of the
diagonalities (diagonal share of the total) of five cluster x model matrices, entry (c, m) comparing real
cluster c with the predictions made for cluster m's rows: TF-IDF Jaccard, average cosine, max cosine,
action F1 and 1/(1 + embedding JS) (each also as diagonality_<name>; with no texts, action F1 alone);
chance is 1/k. action_js_diagonality: the same share for 1 - action JS. distinguishability: the
cross-validated accuracy of a logistic regression that tells generated text embeddings from real ones;
0.5 means they cannot be told apart (the automated analogue of the paper's human study). With `clusters`,
per-cluster values and their means (`cluster_<name>`).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): predicted actions.
    references (`list` of `str`): real actions.
    clusters (`list` of `int`, optional): the persona cluster of each row.
    prediction_texts (`list` of `str`, optional): generated texts, for distinguishability.
    reference_texts (`list` of `str`, optional): real texts (same length); rows where either is missing
        are left out of distinguishability.
    model (`str`, optional): embedding model for the texts ("default": the packaged all-MiniLM-L6-v2).
    folds (`int`, optional): cross-validation folds (default 5).
    seed (`int`, optional): seed of the folds and the bootstrap.
    bootstrap (`int`, optional): bootstrap resamples for confidence intervals (0: none).
Returns:
    action_js, diagonality, diagonality_<matrix>, action_js_diagonality, distinguishability (`float`;
    distinguishability only with texts), their cluster_ means, diagonality_chance, diagonality_matrices,
    per_cluster (`dict`), ci (`dict`).
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("metrics/distributional_fidelity")
    >>> out = metric.compute(predictions=["like", "post", "like", "reply"],
    ...                      references=["like", "post", "like", "reply"], clusters=[0, 0, 1, 1])
    >>> out["action_js"], out["diagonality"] > out["diagonality_chance"]
    (0.0, True)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DistributionalFidelity(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, clusters=None, prediction_texts=None, reference_texts=None,
                 model="default", folds=5, seed=0, bootstrap=0):
        r_emb = g_emb = rows = counts = None
        if (prediction_texts is None) != (reference_texts is None):
            raise ValueError("give both prediction_texts and reference_texts, or neither")
        if prediction_texts is not None:
            if len(prediction_texts) != len(references) or len(reference_texts) != len(references):
                raise ValueError("prediction_texts and reference_texts must have one item per reference")
            rows = np.array([i for i, (g, r) in enumerate(zip(prediction_texts, reference_texts)) if g and r],
                            dtype=np.int64)
            embed = TextEmbedder(model, cache_dir=None)
            refs = [reference_texts[i] for i in rows]
            gens = [prediction_texts[i] for i in rows]
            r_emb, g_emb = embed(refs), embed(gens)
            counts = TermCounts(refs + gens)
        return score_distribution(references, predictions, clusters, reference_embeddings=r_emb,
                                  prediction_embeddings=g_emb, embedding_rows=rows, text_counts=counts,
                                  folds=folds, seed=seed, bootstrap=bootstrap)
