"""Print how long each stack takes to evaluate under mocks, and the unit suite's wall time.

Goals (issue 2): each stack under 3 s, the unit suite under 60 s. Printed, never asserted.
Run: .venv/bin/python bench/evaluate.py [--runs N]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from tests.support.render import render  # noqa: E402  (needs the paths above)

STACKS = ("dev", "prod")
STACK_GOAL_SECONDS = 3.0
SUITE_GOAL_SECONDS = 60.0


def time_stack(stack: str, runs: int) -> list[float]:
    """Evaluate a stack under mocks `runs` times; return each wall time in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        render(stack)
        times.append(time.perf_counter() - start)
    return times


def time_unit_suite() -> float:
    """Run the tests that need no real server; return the wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not integration", "-p", "no:cacheprovider"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="evaluations per stack (default 20)")
    runs = parser.parse_args().runs
    print(f"stack evaluation under mocks ({runs} runs each, goal < {STACK_GOAL_SECONDS:.0f} s)")
    for stack in STACKS:
        times = time_stack(stack, runs)
        median = statistics.median(times)
        print(
            f"  {stack:5} median {median * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms   "
            f"goal ratio {median / STACK_GOAL_SECONDS:.3f}"
        )
    suite = time_unit_suite()
    print(f"unit suite wall time {suite:.1f} s   goal ratio {suite / SUITE_GOAL_SECONDS:.3f} (goal < 60 s)")


if __name__ == "__main__":
    main()
