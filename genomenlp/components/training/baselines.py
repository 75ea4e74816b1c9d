"""Reference models fitted on the same split as every trained model.

A trained model is only worth something above these (GC content alone separates the bundled
promoters fairly well).
"""

from __future__ import annotations

import numpy as np

from genomenlp.components.training.metrics import classification_metrics

BASELINES = ("gc_content", "kmer_1_4")


def gc_fraction(sequences: list[str]) -> np.ndarray:
    """Share of G and C (and S, strong) among the letters of each sequence, shape (n, 1)."""
    return np.array([[sum(map(s.count, "GCS")) / max(1, len(s))] for s in sequences])


def _kmer_frequencies():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler

    return make_pipeline(
        CountVectorizer(analyzer="char", ngram_range=(1, 4), lowercase=False),
        Normalizer(norm="l1"),  # counts → frequencies, so long and short sequences compare
        FunctionTransformer(lambda matrix: matrix.toarray(), accept_sparse=True),
        StandardScaler(),
    )


def fit_baselines(train_sequences, train_labels, test_sequences, test_labels, seed: int = 0,
                  positive: int = 0) -> dict[str, dict]:
    """Test metrics of GC-content and 1–4-mer-frequency logistic regressions fitted on train.

    ``positive`` is the class whose PR-AUC two-class figures report, as for the trained model.

    Returns:
        Baseline name → metrics dictionary (``test_`` keys, as for trained models).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # Newton steps solved to a tight tolerance reach the (unique, L2-regularised) optimum whatever the
    # BLAS thread count; lbfgs stopped early at a thread-dependent point and flipped borderline test rows.
    solver = {"solver": "newton-cholesky", "tol": 1e-10, "max_iter": 200}
    models = {
        "gc_content": make_pipeline(FunctionTransformer(gc_fraction), LogisticRegression(**solver)),
        "kmer_1_4": make_pipeline(_kmer_frequencies(), LogisticRegression(C=0.1, random_state=seed, **solver)),
    }
    results = {}
    for name, model in models.items():
        model.fit(list(train_sequences), np.asarray(train_labels))
        probabilities = np.zeros((len(test_labels), int(max(max(train_labels), max(test_labels))) + 1))
        probabilities[:, model.classes_] = model.predict_proba(list(test_sequences))
        results[name] = classification_metrics(np.asarray(test_labels), probabilities, "test_", positive)
    return results
