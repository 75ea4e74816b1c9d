"""The original toolkit's attribution method: Captum's Layer Integrated Gradients, one call per batch.

Kept as the reference that :mod:`~components.inference.attribution` is tested against and that
``benchmarks/interpret_speed.py`` times (one sequence per call, 50 steps in one pass).
"""

from __future__ import annotations

from collections.abc import Sequence

from genomenlp.components.inference.attribution import WindowAttribution, baseline_batch
from genomenlp.components.inference.predict import padded_batch


def captum_attribute_windows(model, windows: Sequence[Sequence[int]], targets: Sequence[int],
                             special: dict[str, int], n_steps: int = 50, batch_size: int = 1,
                             device=None) -> list[WindowAttribution]:
    """Captum ``LayerIntegratedGradients`` on ``model.base_model.embeddings``, Gauss–Legendre nodes.

    Each call holds ``batch_size`` windows and all their steps in one forward pass, as the
    original's one-sequence-at-a-time explainer does with ``batch_size=1``.
    """
    from captum.attr import LayerIntegratedGradients

    from genomenlp.components.tokenisers.common import BOS, EOS, PAD

    device = device or next(model.parameters()).device
    model.eval()

    def forward(input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits

    integrator = LayerIntegratedGradients(forward, model.base_model.embeddings)
    results = []
    for start in range(0, len(windows), batch_size):
        chosen = list(range(start, min(start + batch_size, len(windows))))
        ids, mask = padded_batch([list(windows[index]) for index in chosen], special[PAD])
        baseline = baseline_batch(ids, mask, special[BOS], special[EOS], special[PAD])
        attributions, delta = integrator.attribute(
            inputs=ids.to(device), baselines=baseline.to(device), additional_forward_args=(mask.to(device),),
            target=[int(targets[index]) for index in chosen], n_steps=n_steps,
            internal_batch_size=len(chosen) * n_steps, return_convergence_delta=True)
        scores = attributions.sum(dim=-1).detach().double().cpu().numpy()
        deltas = delta.detach().double().cpu().numpy()
        for row, index in enumerate(chosen):
            length = len(windows[index])
            results.append(WindowAttribution(scores[row, 1 : length - 1].copy(), float(deltas[row])))
    return results
