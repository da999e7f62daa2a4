"""What the three evaluate modules under ``metrics/`` share: the citation and the ``MetricInfo``."""

from __future__ import annotations

CITATION = """\
@article{blueprint2025,
  title   = {BluePrint: A Social Media User Dataset for LLM Persona Evaluation and Training},
  journal = {arXiv preprint arXiv:2510.02343},
  year    = {2025}
}
"""


def metric_info(description: str, inputs_description: str):
    """``evaluate.MetricInfo`` for a module taking ``predictions`` and ``references`` as strings."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation=CITATION,
        inputs_description=inputs_description,
        features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        reference_urls=["https://arxiv.org/abs/2510.02343"],
    )
