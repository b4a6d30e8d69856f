"""Which way a metric improves, from its name (no torch: the report and the CLI use it)."""

from __future__ import annotations

# Substrings of metric names for which a smaller value is better; every other metric is maximised.
LOWER_IS_BETTER = ("loss", "fid", "kid", "error", "mse")


def lower_is_better(name: str) -> bool:
    """True for losses, FID, KID, errors and MSE (checkpoint.mode=auto, the report's 'best')."""
    lowered = name.lower()
    return any(word in lowered for word in LOWER_IS_BETTER)
