"""Number generator speed and accuracy: a million unique numbers per method, and random's share error.

``python -m bench generator [--n 1000000] [--rounds 3] [--share-n 100000] [--share-seeds 20]``
prints, per method, the best and worst seconds of ``--rounds`` runs and numbers/s (target: 1,000,000 in
<= 3 s); the same with 100,000 existing numbers to avoid; and the largest gap, in percentage points, between
the realised and the configured shares of ``random`` at ``--share-n`` over ``--share-seeds`` seeds (target
<= 0.5).
"""

from __future__ import annotations

import argparse
import time

from bench.machine import describe
from generator.draw import GenerationResult, Method, generate
from generator.ranges import DEFAULT_WEIGHTS


def timed(
    run: int, method: Method, n: int, exclude: set[str] | None = None
) -> tuple[float, GenerationResult]:
    """Seconds taken by one seeded generation, and its result."""
    start = time.perf_counter()
    result = generate(n, method, DEFAULT_WEIGHTS, seed=run, exclude=exclude)
    return time.perf_counter() - start, result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench generator")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--share-n", type=int, default=100_000)
    parser.add_argument("--share-seeds", type=int, default=20)
    args = parser.parse_args(argv)
    print(describe())
    print(f"weights {dict(DEFAULT_WEIGHTS)}")

    for method in Method:
        times = []
        for run in range(args.rounds):
            seconds, result = timed(run, method, args.n)
            times.append(seconds)
            assert len(set(result.numbers)) == args.n
        best = min(times)
        print(
            f"{method.value:>10}: {args.n:,} unique numbers in {best:.2f} s best, {max(times):.2f} s worst "
            f"({args.n / best:,.0f} numbers/s)"
        )

    existing = set(generate(100_000, Method.RANDOM, DEFAULT_WEIGHTS, seed=999).numbers)
    for method in Method:
        seconds, result = timed(999, method, args.n, existing)
        assert existing.isdisjoint(result.numbers)
        print(
            f"{method.value:>10}: {args.n:,} avoiding {len(existing):,} existing in {seconds:.2f} s "
            f"({result.redraws:,} redrawn)"
        )

    total = sum(DEFAULT_WEIGHTS.values())
    worst = 0.0
    for seed in range(args.share_seeds):
        result = generate(args.share_n, Method.RANDOM, DEFAULT_WEIGHTS, seed=seed)
        for code, share in result.shares.items():
            worst = max(worst, abs(share - DEFAULT_WEIGHTS[code] / total) * 100)
    print(
        f"    random: largest share error at {args.share_n:,}, {args.share_seeds} seeds: {worst:.3f} points"
    )
    return 0
