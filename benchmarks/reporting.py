"""What the benchmark scripts share when they report figures."""

from __future__ import annotations

import statistics


def mean_sd(values: list[float | None], digits: int = 3) -> str:
    """``mean ± sd`` of the known values (``—`` when none)."""
    values = [value for value in values if value is not None]
    if not values:
        return "—"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"
