"""After `mutmut run` (make mutants): every mutant that survived must be argued in
maintenance/survivors.csv, either ``equivalent`` (no test can tell it from the code, and why) or
``killed`` (by the test named, which now catches it). Prints the score and whatever is not
accounted for; exit status 1 when something is.

    python maintenance/mutation_summary.py [--survivors maintenance/survivors.csv]
"""

from __future__ import annotations

import argparse
import collections
import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERDICTS = ("equivalent", "killed")


def mutmut_statuses() -> dict[str, str]:
    """``{mutant: status}`` of the last run (killed, survived, timeout, suspicious, no tests, ...)."""
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=REPO, capture_output=True,
                          text=True, check=True)
    statuses = {}
    for line in done.stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            statuses[name] = status
    return statuses


def read_verdicts(path: Path) -> dict[str, tuple[str, str]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    verdicts = {}
    for line, row in enumerate(rows, start=2):
        if row["verdict"] not in VERDICTS or not row["note"].strip():
            raise SystemExit(f"{path} line {line}: verdict must be one of {', '.join(VERDICTS)}, with a note")
        verdicts[row["mutant"]] = (row["verdict"], row["note"])
    return verdicts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivors", default=str(REPO / "maintenance" / "survivors.csv"))
    args = parser.parse_args(argv)
    statuses, verdicts = mutmut_statuses(), read_verdicts(Path(args.survivors))
    counts = collections.Counter(statuses.values())
    survived = sorted(name for name, status in statuses.items() if status != "killed")
    unexplained = [name for name in survived if verdicts.get(name, ("",))[0] != "equivalent"]
    stale = [name for name in verdicts if name not in statuses]
    equivalent = sum(1 for name in survived if name not in unexplained)
    killed = counts["killed"]
    print(f"{len(statuses)} mutants: {killed} killed, {equivalent} equivalent (argued), {len(unexplained)} not "
          f"accounted for; score {killed / max(1, len(statuses) - equivalent):.1%} of the non-equivalent ones")
    for status, number in sorted(counts.items()):
        print(f"  {status}: {number}")
    for name in unexplained:
        claim = verdicts.get(name)
        said = f" (survivors.csv says {claim[0]}: {claim[1]})" if claim else ""
        print(f"not accounted for: {name} {statuses[name]}{said}")
    for name in stale:
        print(f"stale entry (no such mutant any more): {name}")
    if unexplained or stale:
        sys.exit(1)


if __name__ == "__main__":
    main()
