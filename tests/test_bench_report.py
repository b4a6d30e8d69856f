"""benchmarks/report.py: ratios within a run, bandwidth shares, the README table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def bench(case, impl, median_s, baseline, **extra):
    info = {
        "op": "box_iou",
        "case": case,
        "shape": "[N,4]",
        "dtype": "float32",
        "device": "cpu",
        "impl": impl,
        "baseline": baseline,
        **extra,
    }
    return {"extra_info": info, "stats": {"median": median_s, "iqr": 0.0, "rounds": 5}}


def test_ratios_bandwidth_and_readme(tmp_path):
    data = {
        "machine_info": {"vision_kernels": {"cpu": "Test CPU", "cpu_threads": 2, "torch": "2.14.1", "commit": "abc"}},
        "benchmarks": [
            bench("iou", "torchvision.box_iou", 0.010, "torchvision.box_iou"),
            bench("iou", "native", 0.0001, "torchvision.box_iou"),
            bench("bw", "copy", 0.001, "copy", bytes=2_000_000),
            bench("bw", "native", 0.001, "copy", bytes=1_000_000),
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    env, rows = report.load_rows(path)
    by = {(r["case"], r["impl"]): r for r in rows}
    assert abs(by[("iou", "native")]["speedup"] - 100) < 1e-9
    assert abs(by[("bw", "native")]["share_of_copy"] - 0.5) < 1e-9
    table = report.markdown(env, rows)
    assert "| iou | [N,4] | cpu | native | 0.100 ms | 100x |" in table
    assert "1 GB/s (50% of copy)" in table
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- BENCH:t:START -->\nold\n<!-- BENCH:t:END -->\noutro\n")
    report.update_readme(readme, "t", table)
    text = readme.read_text()
    assert "old" not in text and "100x" in text and text.startswith("intro") and text.rstrip().endswith("outro")
