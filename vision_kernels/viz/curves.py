"""Metric curves of a run (from its metrics.jsonl records) as one PNG."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Keys of a metrics.jsonl record that describe the record rather than being a metric.
RESERVED_KEYS = frozenset({"split", "step", "epoch", "time"})
COLUMNS = 3
DPI = 110
# A fixed colour per split, so train and eval look the same in every subplot.
SPLIT_COLORS = {"train": "tab:blue", "eval": "tab:orange"}

Series = dict[str, dict[str, list[tuple[float, float]]]]


def is_number(value: Any) -> bool:
    """True for int and float values (bool is an int to Python, but not a metric)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def collect_series(records: Iterable[Mapping[str, Any]]) -> Series:
    """{metric: {split: [(step, value), ...]}} in order of first appearance, sorted by step.

    Records without a numeric step, and non-numeric values, are ignored."""
    series: Series = {}
    for record in records:
        step = record.get("step")
        if not is_number(step):
            continue
        split = str(record.get("split", "train"))
        for name, value in record.items():
            if name in RESERVED_KEYS or not is_number(value):
                continue
            series.setdefault(name, {}).setdefault(split, []).append((float(step), float(value)))
    for splits in series.values():
        for points in splits.values():
            points.sort(key=lambda point: point[0])  # stable: a resumed run's repeated steps keep their order
    return series


def plot_curves(records: Iterable[Mapping[str, Any]], path: str | Path) -> list[str]:
    """Plot every numeric metric of `records` against step, one subplot per metric name (its train
    and eval series on the same axes), into the PNG `path`; return the metric names plotted.

    With nothing to plot no file is written and [] is returned."""
    series = collect_series(records)
    if not series:
        return []
    # A bare Figure renders with Agg without touching pyplot's global state or the process's
    # backend, so this is safe in a headless training process and in a notebook alike.
    from matplotlib.figure import Figure

    names = list(series)
    columns = min(COLUMNS, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4.4 * columns, 3.3 * rows), dpi=DPI)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(axes_grid.flat):
        if index < len(names):
            _plot_metric(axes, names[index], series[names[index]])
        else:
            axes.set_visible(False)
    figure.tight_layout()
    figure.savefig(Path(path), format="png", dpi=DPI)
    return names


def _plot_metric(axes: Any, name: str, splits: dict[str, list[tuple[float, float]]]) -> None:
    for split, points in splits.items():
        steps = [step for step, _ in points]
        values = [value for _, value in points]
        # Eval points are few and far between: markers make each one visible, even a single one.
        marker = "o" if split != "train" or len(points) < 2 else None
        axes.plot(steps, values, label=split, color=SPLIT_COLORS.get(split), marker=marker, markersize=3.5, lw=1.4)
    axes.set_title(name, fontsize=11)
    axes.set_xlabel("step")
    axes.set_ylabel(name)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, frameon=False)
