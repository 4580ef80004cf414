"""Print how long the real engine takes to deploy the stack on the local control plane, and to install itself.

Issue 19's figures, printed, never asserted: `up` of the local stack (wall, and per resource kind from the
engine's events), a no-op `up`, `preview`, `destroy`, the prod shape's `up` (and its destroy); the engine's
and control plane's install time cold (the stamps scripts/engine/install writes) and warm (a rerun timed
here). Ratios are against a peer measured in the same run.
Run: .venv/bin/python bench/deploy.py   (after scripts/test, or scripts/engine/install and scripts/providers/install)
"""

import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from tests.support.engine import (  # noqa: E402  (needs the paths above)
    CACHE,
    CLUSTER,
    Backend,
    Outcome,
    Toolchain,
    cluster,
)

RESOURCE_PACKAGES = ("kubernetes:", "random:", "tls:")
"""Types whose steps are timed by kind (components and the stack only span their children)."""


def wall(outcome: Outcome) -> str:
    """`N.N s (result, changes)` for one run."""
    result = "ok" if outcome.succeeded else "FAILED: " + "; ".join(outcome.errors)[:300]
    return f"{outcome.seconds:6.1f} s  ({result}, {outcome.changes})"


def by_kind(outcome: Outcome) -> None:
    """Per resource kind: how many, and the median and longest time from its step's start to its outputs."""
    times: dict[str, list[float]] = defaultdict(list)
    for step in outcome.steps:
        if step.type.startswith(RESOURCE_PACKAGES) and step.seconds is not None:
            times[step.kind].append(step.seconds)
    print(f"    {'kind':26} {'count':>5} {'median s':>9} {'max s':>7}")
    for kind, seconds in sorted(times.items(), key=lambda item: -max(item[1])):
        print(f"    {kind:26} {len(seconds):5d} {statistics.median(seconds):9.2f} {max(seconds):7.2f}")


def ratio(name: str, value: float, peer_name: str, peer: float) -> None:
    """One ratio line."""
    print(f"  {name} / {peer_name}: {value / peer:.2f}" if peer else f"  {name} / {peer_name}: n/a")


def install_figures() -> None:
    """Cold times from the install stamps; warm times of a rerun of each install script, timed now."""
    print("install (engine and control plane, scripts/engine/install; providers, scripts/providers/install)")
    cold_total = 0
    for stamp in sorted((CACHE / "engine").glob("*/.installed")):
        lines = stamp.read_text().splitlines()
        cold = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0
        cold_total += cold
        print(f"  cold  {stamp.parent.name:58} {cold:6d} s")
    print(f"  cold  {'engine, all pieces one after another':58} {cold_total:6d} s")
    print("  cold  providers (random, tls): not recorded by scripts/providers/install's stamp")
    warm = {}
    for script in ("scripts/engine/install", "scripts/providers/install"):
        started = time.perf_counter()
        subprocess.run([str(REPO / script)], check=True, capture_output=True)
        warm[script] = time.perf_counter() - started
        print(f"  warm  {script:58} {warm[script]:6.2f} s")
    ratio("warm engine install", warm["scripts/engine/install"], "cold", cold_total)


def main() -> None:
    """Measure and print."""
    toolchain = Toolchain.installed()
    running = subprocess.run([str(CLUSTER), "status"], capture_output=True, check=False).returncode == 0
    started = time.perf_counter()
    if not running:
        cluster("start")
        print(f"control plane started in {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deploy-") as root:
            backend = Backend(Path(root), toolchain)
            cluster("volumes")
            local = backend.stack("local", "dev")
            up = local.up()
            print(f"local stack (dev's settings on the control plane), {len(up.steps)} steps")
            print(f"  up           {wall(up)}")
            by_kind(up)
            noop = local.up()
            print(f"  no-op up     {wall(noop)}")
            preview = local.preview()
            print(f"  preview      {wall(preview)}")
            destroy = local.destroy()
            print(f"  destroy      {wall(destroy)}")
            local.remove()
            cluster("volumes")
            prod = backend.stack("prod", "prod")
            prod_up = prod.up()
            print("prod shape (three fake nodes in two zones)")
            print(f"  up           {wall(prod_up)}")
            prod_destroy = prod.destroy()
            print(f"  destroy      {wall(prod_destroy)}")
            prod.remove()
            cluster("volumes")
            print("ratios (same run)")
            ratio("no-op up", noop.seconds, "first up", up.seconds)
            ratio("preview", preview.seconds, "first up", up.seconds)
            ratio("destroy", destroy.seconds, "first up", up.seconds)
            ratio("prod up", prod_up.seconds, "local up", up.seconds)
    finally:
        if not running:
            cluster("stop")
    install_figures()


if __name__ == "__main__":
    main()
