"""What counts as a fitted weight spectrum, shared by the analysis and its plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

# WeightWatcher's band of well-trained layers: alpha between 2 and 6.
ALPHA_BAND = (2.0, 6.0)


def fitted(layers: pd.DataFrame) -> pd.DataFrame:
    """Rows whose power-law fit succeeded (weightwatcher writes alpha = -1 for a failed fit)."""
    if layers.empty or "alpha" not in layers:
        return layers.iloc[0:0]
    alpha = pd.to_numeric(layers["alpha"], errors="coerce")
    return layers[np.isfinite(alpha) & (alpha > 0)]
