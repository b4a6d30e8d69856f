"""Turns a pytest-benchmark JSON into ratio tables: every implementation of a case against the
case's torchvision baseline, all measured in the same run.

    python benchmarks/report.py build/benchmark.json [--readme README.md]

Writes benchmarks/results/<machine>.json (rows + versions, commit, CPU/GPU) and prints a markdown
table; with --readme, replaces the README's table for this machine (between BENCH markers).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_rows(path: Path) -> tuple[dict, list[dict]]:
    data = json.loads(path.read_text())
    env = data["machine_info"].get("vision_kernels", {})
    rows = []
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        rows.append(
            {
                **info,
                "median_ms": bench["stats"]["median"] * 1e3,
                "iqr_ms": bench["stats"]["iqr"] * 1e3,
                "rounds": bench["stats"]["rounds"],
            }
        )
    # Ratios within each (case, device): baseline median / this median (> 1: faster than baseline).
    by_case = defaultdict(dict)
    for row in rows:
        by_case[(row["case"], row["device"])][row["impl"]] = row
    for row in rows:
        base = by_case[(row["case"], row["device"])].get(row["baseline"])
        row["speedup"] = base["median_ms"] / row["median_ms"] if base else None
        if "bytes" in row:
            row["gb_per_s"] = row["bytes"] / (row["median_ms"] * 1e-3) / 1e9
    for row in rows:  # bandwidth rows: the share of the copy's bandwidth in the same run
        copy = by_case[(row["case"], row["device"])].get("copy")
        if "gb_per_s" in row and copy is not None:
            row["share_of_copy"] = row["gb_per_s"] / (copy["bytes"] / (copy["median_ms"] * 1e-3) / 1e9)
    return env, rows


def _ratio(speedup: float | None) -> str:
    if speedup is None:
        return ""
    return f"{speedup:.0f}x" if speedup >= 10 else f"{speedup:.1f}x" if speedup >= 1 else f"{speedup:.2f}x"


def markdown(env: dict, rows: list[dict]) -> str:
    head = (
        f"{env.get('gpu') or env.get('cpu')} ({env.get('cpu_threads')} threads), torch {env.get('torch')}, "
        f"torchvision {env.get('torchvision')}, commit {str(env.get('commit'))[:12]}, {env.get('date')}"
    )
    memory = any("saved_bytes" in r for r in rows)  # training cases record their activation memory
    header = "| case | shape | device | implementation | median | vs baseline |"
    lines = [
        head,
        "",
        header + (" saved for backward |" if memory else ""),
        "|---|---|---|---|---:|---:|" + ("---:|" if memory else ""),
    ]
    for r in rows:
        speed = "baseline" if r["impl"] == r["baseline"] else _ratio(r["speedup"])
        if "gb_per_s" in r:  # bandwidth rows: GB/s, and the share of the copy's in the same run
            share = r.get("share_of_copy")
            speed = f"{r['gb_per_s']:.0f} GB/s" + (
                "" if r["impl"] == "copy" or share is None else f" ({share:.0%} of copy)"
            )
        cells = [r["case"], r["shape"], r["device"], r["impl"], f"{r['median_ms']:.3f} ms", speed]
        if memory:
            cells.append(f"{r['saved_bytes'] / 2**20:.1f} MB" if "saved_bytes" in r else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(readme: Path, tag: str, table: str) -> None:
    start, end = f"<!-- BENCH:{tag}:START -->", f"<!-- BENCH:{tag}:END -->"
    text = readme.read_text()
    block = f"{start}\n{table}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path)
    parser.add_argument("--readme", type=Path)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from vision_kernels.benchmarking import machine_tag

    env, rows = load_rows(args.json)
    devices = sorted({r["device"] for r in rows})
    for device in devices:
        device_rows = [r for r in rows if r["device"] == device]
        tag = machine_tag(env, device)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        out = args.out_dir / f"{tag}.json"
        out.write_text(json.dumps({"environment": env, "results": device_rows}, indent=1) + "\n")
        table = markdown(env, device_rows)
        print(table, f"\nwritten: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}\n", sep="\n")
        if args.readme:
            update_readme(args.readme, tag, table)


if __name__ == "__main__":
    main()
