"""Hot path: what two per-run speed tricks save, against the plain code they replace.

Each trick runs once or more for every run a worker records, so its worth is its
saving per call as a share of the worker's CPU time per run (``--cpu-per-run``, in
µs: take the figure ``bench/throughput.py`` prints on the same machine). By the
house rule a trick earns its keep only above 10 % of that.

* ``ids`` encodes an id's 128 bits two characters (10 bits) per table lookup; the
  plain way is one ``divmod`` per character. One id per run at least.
* ``Deadlines`` (``adapters/http/deadlines.py``) shares one loop timer per 10 ms
  slice among requests; the plain way is ``asyncio.timeout``, a timer per request.
  Measured on uvloop, as the worker runs, with ``--in-flight`` requests at once.

Rounds alternate the two sides of each pair; medians of ``--rounds`` are printed.

    .venv/bin/python bench/hotpath.py [--rounds 7] [--cpu-per-run 150]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cadenza import ids
from cadenza.adapters.http.deadlines import Deadlines
from cadenza.adapters.http.loop import install_uvloop

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
IDS_PER_ROUND = 100_000
REQUESTS_PER_ROUND = 50_000
SHARE_RULE = 0.10


def _chars(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def plain_encoding(millis: int, bits: int) -> str:
    """One ``divmod`` per character, what the pair table replaces: 10 characters of
    milliseconds (two zero bits, then 48), 16 of random bits."""
    return _chars(millis, 10) + _chars(bits, 16)


def pair_table_encoding(millis: int, bits: int) -> str:
    """The id module's own encoding of the same 26 characters."""
    return ids._base32(millis, ids._STAMP_SHIFTS) + ids._encode_random(bits)


def time_encoding(encode: Callable[[int, int], str], values: list[tuple[int, int]]) -> float:
    """CPU µs per id."""
    start = time.process_time()
    for millis, bits in values:
        encode(millis, bits)
    return (time.process_time() - start) / len(values) * 1e6


async def time_deadlines(use_slices: bool, in_flight: int, total: int) -> float:
    """CPU µs per request spent entering and leaving its deadline (plus one yield)."""
    deadlines = Deadlines()
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            if use_slices:
                async with deadlines.after(30):
                    await asyncio.sleep(0)
            else:
                async with asyncio.timeout(30):
                    await asyncio.sleep(0)

    start = time.process_time()
    await asyncio.gather(*(one() for _ in range(total)))
    return (time.process_time() - start) / total * 1e6


def report(name: str, trick: list[float], plain: list[float], cpu_per_run: float) -> None:
    saved = statistics.median(plain) - statistics.median(trick)
    share = saved / cpu_per_run
    print(
        f"{name:10} trick {statistics.median(trick):6.2f} µs  plain "
        f"{statistics.median(plain):6.2f} µs  saves {saved:5.2f} µs per run = "
        f"{share:6.1%} of {cpu_per_run:.0f} µs (rule: > {SHARE_RULE:.0%} to keep a trick)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu-per-run", type=float, default=150.0)
    parser.add_argument("--in-flight", type=int, default=256)
    args = parser.parse_args()
    install_uvloop()
    values = [(random.getrandbits(48), random.getrandbits(80)) for _ in range(IDS_PER_ROUND)]
    if any(pair_table_encoding(*v) != plain_encoding(*v) for v in values[:1000]):
        sys.exit("the two encodings differ: the comparison would be meaningless")
    id_trick, id_plain, dl_trick, dl_plain = [], [], [], []
    for _ in range(args.rounds):
        id_trick.append(time_encoding(pair_table_encoding, values))
        id_plain.append(time_encoding(plain_encoding, values))
        dl_trick.append(asyncio.run(time_deadlines(True, args.in_flight, REQUESTS_PER_ROUND)))
        dl_plain.append(asyncio.run(time_deadlines(False, args.in_flight, REQUESTS_PER_ROUND)))
    print(f"medians of {args.rounds} interleaved rounds; CPU time of this process")
    report("ids", id_trick, id_plain, args.cpu_per_run)
    report("deadlines", dl_trick, dl_plain, args.cpu_per_run)


if __name__ == "__main__":
    main()
