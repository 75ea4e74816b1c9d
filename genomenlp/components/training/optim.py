"""Device and precision choice, and BERT's AdamW recipe, for the code that runs models outside Trainer."""

from __future__ import annotations

from genomenlp.components.errors import InputError
from genomenlp.components.training.config import Device


def choose_device(choice: Device):
    """``cuda`` when asked for or (with ``auto``) present, else ``cpu``."""
    import torch

    if choice is Device.CUDA and not torch.cuda.is_available():
        raise InputError("--device", "cuda requested but no CUDA device is available; use auto or cpu")
    if choice is Device.CPU or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def autocast_dtype(device):
    """bf16 (or fp16 where bf16 is missing) on CUDA; ``None`` (full precision) on the CPU."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def to_device(array, device):
    """A numpy batch as a tensor on ``device``; on CUDA through pinned memory, so the copy overlaps compute."""
    import torch

    tensor = torch.from_numpy(array)
    return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor


def adamw(model, learning_rate: float, weight_decay: float, betas: tuple[float, float], eps: float, device):
    """AdamW that, as BERT's recipe does, decays neither biases nor layer norms."""
    import torch

    decayed = {n for n, p in model.named_parameters() if p.ndim > 1 and "LayerNorm" not in n and "layer_norm" not in n}
    decay = [p for n, p in model.named_parameters() if n in decayed]
    no_decay = [p for n, p in model.named_parameters() if n not in decayed]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate, betas=betas, eps=eps, fused=device.type == "cuda",
    )
