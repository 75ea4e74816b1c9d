"""Layer Integrated Gradients on the embedding layer, many windows and IG steps per forward pass.

For each window ``x`` and its baseline ``b`` (``<s>``, ``<pad>`` × n, ``</s>``: the same length
and positions, no content), Integrated Gradients integrates the gradient of the target class's
logit along the straight line from the embedding-layer output of ``b`` to that of ``x``. The
per-token score is the attribution summed over the embedding dimension; by IG's completeness the
scores sum to ``F(x) − F(b)`` up to the convergence delta reported with them. ``<s>`` and
``</s>`` sit at the same positions in ``x`` and ``b``, so their scores are exactly zero and are
dropped.

This is Captum's ``LayerIntegratedGradients`` with Gauss–Legendre nodes (the original toolkit's
method; the tests check the two agree), computed without the work Captum repeats per call: the
embedding outputs of ``x`` and ``b`` come from the embedding layer alone, not from full forward
passes; ``F(b)`` is computed once per distinct baseline; and every interpolated pass runs
through :mod:`~components.inference.classifier_path`, which skips the last layer's positions the
logits never read. Batching packs many windows × steps into each pass, which fills a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genomenlp.components.inference.predict import padded_batch


@dataclass
class WindowAttribution:
    """Attributions of one model window.

    Attributes:
        scores: One score per content token (``<s>``/``</s>`` excluded), positive = toward the target.
        delta: Captum's convergence delta: sum of all scores − (F(x) − F(baseline)) for the target logit.
    """

    scores: np.ndarray
    delta: float


def baseline_batch(ids, mask, bos_id: int, eos_id: int, pad_id: int):
    """Baselines of padded windows: ``<s>`` + ``<pad>``… + ``</s>`` over each window's own length."""
    import torch

    lengths = mask.sum(dim=1)
    baseline = torch.full_like(ids, pad_id)
    baseline[:, 0] = bos_id
    baseline[torch.arange(len(ids)), lengths - 1] = eos_id
    return baseline


# Measured with the default model: on the CPU, passes beyond ~8k tokens gain nothing per token
# (activations leave the cache); a GPU wants big passes to fill its cores.
CPU_TOKENS_PER_PASS = 8_192
CUDA_TOKENS_PER_PASS = 131_072


def default_tokens_per_pass(device) -> int:
    """Tokens per forward pass that suit the device."""
    return CUDA_TOKENS_PER_PASS if device.type == "cuda" else CPU_TOKENS_PER_PASS


def rows_per_pass(windows: int, n_steps: int, width: int, tokens_per_pass: int) -> int:
    """(window, step) rows per forward pass: as many as fit the token budget, at least one."""
    return max(1, min(windows * n_steps, tokens_per_pass // max(width, 1)))


def attribute_windows(model, windows: Sequence[Sequence[int]], targets: Sequence[int], special: dict[str, int],
                      n_steps: int = 50, batch_size: int = 32, tokens_per_pass: int | None = None,
                      device=None, min_steps: int | None = None, tolerance: float = 1e-3) -> list[WindowAttribution]:
    """Attribute each window's target logit to its tokens, ``batch_size`` windows at a time.

    With ``min_steps`` the integration is adaptive: every window starts with ``min_steps``
    Gauss–Legendre nodes, and only windows whose completeness error (|convergence delta|) exceeds
    ``tolerance`` × max(1, |sum of attributions|) are integrated again with twice the nodes, up to
    ``n_steps``. Smooth models meet the tolerance at a few nodes, so most windows cost a fraction of
    a fixed 50-node integration with the same attributions to within the tolerance.

    Args:
        model: A ``*ForSequenceClassification`` model in eval mode (BERT or DistilBERT: its
            ``base_model.embeddings`` is the attributed layer), or an ensemble of them (each member's).
        windows: Token ids of each window, ``<s>`` … ``</s>`` included.
        targets: Class id to explain for each window.
        special: Ids of ``<s>``, ``</s>`` and ``<pad>`` (see :func:`~components.inference.windows.special_ids`).
        n_steps: Integration steps (the most, when adaptive).
        batch_size: Windows integrated together (their steps share forward passes).
        tokens_per_pass: Upper bound of rows × width in one forward pass (default: by device).
        device: Torch device (default: the model's).
        min_steps: First number of steps of the adaptive integration (``None``: always ``n_steps``).
        tolerance: Completeness error accepted, relative to the attribution total (adaptive only).

    Returns:
        One :class:`WindowAttribution` per window, in the order given.
    """
    from genomenlp.components.tokenisers.common import BOS, EOS, PAD

    if len(windows) != len(targets):
        raise ValueError(f"{len(windows)} windows but {len(targets)} targets")
    if min_steps is not None and min_steps < n_steps:
        results = attribute_windows(model, windows, targets, special, min_steps, batch_size, tokens_per_pass, device)
        unsettled = [index for index, result in enumerate(results)
                     if abs(result.delta) > tolerance * max(1.0, abs(float(result.scores.sum())))]
        if unsettled:
            refined = attribute_windows(model, [windows[i] for i in unsettled], [targets[i] for i in unsettled],
                                        special, n_steps, batch_size, tokens_per_pass, device,
                                        min(2 * min_steps, n_steps), tolerance)
            for index, result in zip(unsettled, refined, strict=True):
                results[index] = result
        return results
    device = device or next(model.parameters()).device
    tokens_per_pass = tokens_per_pass or default_tokens_per_pass(device)
    model.eval()

    # Similar lengths side by side: little of each pass is spent on padding.
    order = sorted(range(len(windows)), key=lambda index: len(windows[index]))
    results: list[WindowAttribution | None] = [None] * len(windows)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        ids, mask = padded_batch([list(windows[index]) for index in chosen], special[PAD])
        baseline = baseline_batch(ids, mask, special[BOS], special[EOS], special[PAD])
        scores, deltas = integrate(model, ids.to(device), mask.to(device), baseline.to(device),
                                   [int(targets[index]) for index in chosen], n_steps,
                                   rows_per_pass(len(chosen), n_steps, ids.shape[1], tokens_per_pass))
        for row, index in enumerate(chosen):
            length = len(windows[index])
            results[index] = WindowAttribution(scores[row, 1 : length - 1].copy(), float(deltas[row]))
    return results


def gauss_legendre(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``n_steps``-point Gauss–Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    return (nodes + 1) / 2, weights / 2


def integrate(model, ids, mask, baseline, targets: list[int], n_steps: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrated Gradients of one padded batch: per-token scores (windows, tokens) and deltas (windows).

    ``rows`` (window, step) pairs go through the model per pass. An ensemble's logits are the mean of its
    members', so its attributions (and deltas) are the mean of each member's on its own embeddings.
    """
    import torch

    from genomenlp.components.training.ensemble_model import is_ensemble

    if is_ensemble(model):
        each = [integrate(member, ids, mask, baseline, targets, n_steps, rows) for member in model.members]
        return np.mean([scores for scores, _ in each], axis=0), np.mean([deltas for _, deltas in each], axis=0)

    from genomenlp.components.inference.classifier_path import embedding_output, logits_from_embeddings

    target = torch.tensor(targets, device=ids.device)
    every = torch.arange(len(ids), device=ids.device)
    with torch.no_grad():
        inputs = embedding_output(model, ids)
        # Baselines of equal length are identical: their embeddings and logits are computed once.
        distinct, inverse = torch.unique(baseline, dim=0, return_inverse=True)
        distinct_mask = torch.zeros_like(mask[: len(distinct)])
        distinct_mask[inverse] = mask
        distinct_embedded = embedding_output(model, distinct)
        references = distinct_embedded[inverse]
        difference = inputs - references
        logits_input = logits_from_embeddings(model, inputs, mask)[every, target]
        logits_baseline = logits_from_embeddings(model, distinct_embedded, distinct_mask)[inverse, target]
    alphas, weights = (torch.tensor(values, dtype=inputs.dtype, device=ids.device)
                       for values in gauss_legendre(n_steps))
    windows = len(ids)
    pairs_window = torch.arange(windows, device=ids.device).repeat_interleave(n_steps)
    pairs_step = torch.arange(n_steps, device=ids.device).repeat(windows)
    gradient_sum = torch.zeros_like(inputs)
    for start in range(0, len(pairs_window), rows):
        window, step = pairs_window[start : start + rows], pairs_step[start : start + rows]
        point = (references[window] + alphas[step, None, None] * difference[window]).requires_grad_(True)
        with torch.enable_grad():
            logits = logits_from_embeddings(model, point, mask[window])
            chosen = logits[torch.arange(len(window), device=ids.device), target[window]].sum()
            (gradient,) = torch.autograd.grad(chosen, point)
        gradient_sum.index_add_(0, window, gradient * weights[step, None, None])
    scores = (difference * gradient_sum).sum(dim=-1).double()
    deltas = scores.sum(dim=1) - (logits_input.double() - logits_baseline.double())
    return scores.cpu().numpy(), deltas.cpu().numpy()
