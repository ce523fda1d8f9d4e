"""Medians over the rounds of ``bench/interleave.sh``, one column per variant.

    .venv/bin/python bench/interleave_report.py OUTDIR [FIRST,SECOND,...]

Each figure is the median of what ``bench/claim.py`` and ``bench/throughput.py``
printed in every round (their one-repetition lines), with the change from the first
variant named. ``n`` is the number of rounds that printed the figure.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

_SECTION = re.compile(r"^(SQLite|PostgreSQL)[^\n]*?, (sequential|overlapped|floor)\b", re.M)
_RATE = re.compile(r"drain rate\s+([\d,]+)")
_CPU = re.compile(r"client CPU\s+([\d.]+)")
_SHARE = re.compile(r"store/floor\s+([\d.]+) +\((\w+)")
_THROUGHPUT = re.compile(
    r"^\s+(sqlite|postgres)\s+run \d+:\s+(\d+) exec/s\s+bare\s+(\d+) req/s\s+ratio ([\d.]+)"
    r"\s+CPU/run\s+(\d+) µs\s+bare\s+(\d+) µs.*?ratio ([\d.]+)",
    re.M,
)
Figures = defaultdict[str, defaultdict[str, list[float]]]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _claim(figures: defaultdict[str, list[float]], text: str) -> None:
    """Each report section starts at its backend's name, at the start of a line."""
    starts = list(_SECTION.finditer(text))
    ends = [m.start() for m in starts] + [len(text)]
    for m, end in zip(starts, ends[1:], strict=True):
        backend, mode = m[1], m[2]
        body = text[m.end() : end]
        rate = _RATE.search(body)
        if rate:
            figures[f"claim {backend} {mode} rows/s"].append(_number(rate[1]))
        cpu = _CPU.search(body)
        if cpu:
            figures[f"claim {backend} {mode} CPU us/row"].append(_number(cpu[1]))
        for share, drain in _SHARE.findall(body):
            figures[f"claim {backend} store/floor {drain}"].append(_number(share))


def _throughput(figures: defaultdict[str, list[float]], text: str) -> None:
    for m in _THROUGHPUT.finditer(text):
        kind = m[1]
        figures[f"throughput {kind} exec/s"].append(_number(m[2]))
        figures[f"throughput {kind} ratio to bare"].append(_number(m[4]))
        figures[f"throughput {kind} CPU us/run"].append(_number(m[5]))
        figures[f"throughput {kind} bare CPU us/run"].append(_number(m[6]))
        figures[f"throughput {kind} ratio to bare (worker's GC)"].append(_number(m[7]))


def collect(out: Path) -> Figures:
    figures: Figures = defaultdict(lambda: defaultdict(list))
    for path in sorted(out.glob("*_*_*.txt")):
        kind, rest = path.stem.split("_", 1)
        name = rest.rsplit("_", 1)[0]
        if kind == "claim":
            _claim(figures[name], path.read_text())
        elif kind == "tp":
            _throughput(figures[name], path.read_text())
    return figures


def main() -> None:
    out = Path(sys.argv[1])
    figures = collect(out)
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else sorted(figures)
    keys = list(dict.fromkeys(k for name in names for k in figures[name]))
    print(f"{'median over rounds':48}" + "".join(f"{name:>22}" for name in names))
    for key in keys:
        base = figures[names[0]].get(key)
        cells = []
        for name in names:
            values = figures[name].get(key)
            if not values:
                cells.append(f"{'-':>22}")
                continue
            median = statistics.median(values)
            change = ""
            if base and name != names[0]:
                change = f"{median / statistics.median(base) - 1:+.0%}"
            digits = 2 if median < 10 else 0
            cells.append(f"{median:>12,.{digits}f} {change:>5} n{len(values)}")
        print(f"{key:48}" + "".join(cells))


if __name__ == "__main__":
    main()
