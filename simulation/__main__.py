"""make simulate: many seeds of the simulated week; one line of figures at the end.

python -m simulation --seeds 100000          # seeds 0..99999
python -m simulation --seed 4242 --verbose   # replay one seed, its scenario and violations
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from simulation import world


def _one(seed: int) -> tuple[int, list[str], float, int, int]:
    violations, days, ran = world.run_world(seed)
    reads = ran.hubspot.reads
    read_back = 2 if reads["found"] else 1 if reads["answered"] else 0
    return seed, violations, days, ran.background_dead, read_back


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, not argparse's usage block
        print(f"simulate: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m simulation", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds, from --first (default 1000)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--seed", type=int, help="replay this one seed")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--verbose", action="store_true", help="print each violation")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.seeds < 1 or args.jobs < 1:
        print("simulate: --seeds and --jobs must be at least 1", file=sys.stderr)
        return 2
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    if args.seed is not None:
        print(world.Scenario.draw(args.seed, world.Scheduler().now))
    started = time.monotonic()
    days = 0.0
    failing: list[int] = []
    background = 0
    read_back = [0, 0, 0]  # seeds whose lost answers were read back: never, found nothing, found some
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for seed, violations, covered, dead, read in pool.map(_one, seeds, chunksize=50):
            days += covered
            background += dead
            read_back[read] += 1
            if violations:
                failing.append(seed)
                if args.verbose or args.seed is not None or len(failing) <= 5:
                    for violation in violations[:5]:
                        print(f"seed {seed}: {violation}")
    total = sum(1 for _ in seeds)
    print(
        f"lost answers read back (batch/read answered) in {read_back[1] + read_back[2]} seeds, "
        f"finding stored payments in {read_back[2]}"
    )
    print(
        f"dead-lettered after their incident, at a last delivery that met the background faults "
        f"(not violations): {background}"
    )
    print(
        f"simulate: {total} seeds, {days:.0f} simulated days, {len(failing)} violations"
        + (
            f" (seeds {', '.join(map(str, failing[:10]))}; replay: python -m simulation --seed N)"
            if failing
            else ""
        )
        + f" in {time.monotonic() - started:.0f} s"
    )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
