"""`python -m bench [--only NAME ...] [--repeats N]`: run cases, update results, print the table."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from bench.harness import CASES, REPORT, render, run_case, save

PACKAGE = Path(__file__).resolve().parent


def discover() -> dict[str, str]:
    """Import every ``bench/cases_*.py`` module; map case name -> defining module."""
    owners: dict[str, str] = {}
    for info in pkgutil.iter_modules([str(PACKAGE)]):
        if info.name.startswith("cases_"):
            module = f"bench.{info.name}"
            before = set(CASES)
            importlib.import_module(module)
            owners.update({name: module for name in set(CASES) - before})
    return owners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    parser.add_argument("--repeats", type=int, help="override each case's repeat count")
    args = parser.parse_args()
    owners = discover()
    names = args.only or sorted(owners)
    unknown = set(names) - set(owners)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}; known: {', '.join(owners)}")
    results = {}
    for name in names:
        print(f"running {name} ...", flush=True)
        results[name] = run_case(owners[name], name, args.repeats)
    report = render(save(results))
    REPORT.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
