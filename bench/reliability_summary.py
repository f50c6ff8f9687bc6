"""Reliability summary: faults injected / survived, bad inputs tried / handled, rows lost, leaks found.

    .venv/bin/python bench/reliability_summary.py [--crash-json FILE] [--junit FILE]

Figures come from the real runs, never from a list kept by hand:
* the crash suite (bench/crash_suite.py): kills (each a fault injected; survived when nothing was lost,
  doubled or wrong afterwards and the update was recorded FAILED), the wrong-credentials run, rows lost
  and leaks found. `--crash-json` reads the figures an earlier suite wrote (`crash_suite.py --json F`);
  without it a reduced suite runs now (--runs 3).
* the reliability tests (tests/reliability: bad-input corpus, source faults), run now through pytest
  with a JUnit report, or read from `--junit FILE` of an earlier run: each source-fault test is a fault
  injected (survived when it passed), each bad-input case an input tried (handled when it passed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _junit(path: Path) -> dict[str, Counter]:
    """{test module: Counter(tried, passed)} from a JUnit XML report."""
    out: dict[str, Counter] = {}
    for case in ET.parse(path).iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        if case.find("skipped") is not None:
            continue
        counts = out.setdefault(module, Counter())
        counts["tried"] += 1
        if case.find("failure") is None and case.find("error") is None:
            counts["passed"] += 1
    return out


def _run_tests(report: Path) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    cmd += ["tests/reliability/test_bad_inputs.py", "tests/reliability/test_source_faults.py"]
    subprocess.run(cmd, cwd=REPO, check=False)


def _run_crash_suite(figures: Path) -> None:
    cmd = [sys.executable, str(REPO / "bench" / "crash_suite.py"), "--runs", "3", "--json", str(figures)]
    subprocess.run(cmd, cwd=REPO, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crash-json", type=Path, help="figures of an earlier crash suite (its --json file)")
    parser.add_argument("--junit", type=Path, help="JUnit XML of an earlier tests/reliability run")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="reliability-"))
    crash_json = args.crash_json or work / "crash.json"
    if args.crash_json is None:
        _run_crash_suite(crash_json)
    junit = args.junit or work / "junit.xml"
    if args.junit is None:
        _run_tests(junit)
    if not crash_json.exists() or not junit.exists():
        print(f"error: no figures ({crash_json}, {junit}): see the output above", file=sys.stderr)
        return 1
    crash = json.loads(crash_json.read_text())
    tests = _junit(junit)
    faults = tests.get("test_source_faults", Counter())
    inputs = tests.get("test_bad_inputs", Counter())

    kills = crash["kills"]
    kills_survived = kills if crash["ok"] else 0
    credentials = 1 if crash.get("wrong_credentials_failed_clearly") else 0
    injected = kills + 1 + faults["tried"]
    survived = kills_survived + credentials + faults["passed"]
    rows_lost = crash["rows_lost"] + crash["rows_extra"]
    print("reliability summary")
    print(
        f"  faults injected / survived:  {injected} / {survived}  ({kills} kill -9 of the pipeline, 1 wrong-"
    )
    print(f"                               credentials run, {faults['tried']} source-fault tests)")
    print(
        f"  bad inputs tried / handled:  {inputs['tried']} / {inputs['passed']}  (tests/reliability/test_bad_inputs.py)"
    )
    print(
        f"  rows lost:                   {rows_lost}  (duplicated {crash['rows_duplicated']}, wrong {crash['rows_wrong']})"
    )
    print(
        f"  leaks found:                 {len(crash['leaks'])}  ({crash['files_scanned']:,} files and logs scanned)"
    )
    ok = (
        injected == survived
        and inputs["tried"] == inputs["passed"] > 0
        and rows_lost == crash["rows_duplicated"] == crash["rows_wrong"] == 0
        and not crash["leaks"]
    )
    print(f"  result:                      {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
