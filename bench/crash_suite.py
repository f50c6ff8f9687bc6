"""Crash suite: kill -9 the bronze pipeline at random points, run again, then compare bronze with
PostgreSQL row for row.

    .venv/bin/python bench/crash_suite.py [--runs 20] [--scale 0.002] [--seed 1]

On a private PostgreSQL server (a fresh temporary one unless --pg-dir names one; never var/postgres's
data): seed the source (with rule-breaking rows), set up capture, then

1. initial load: start `inventory-bronze run` (both pipelines, as a subprocess in its own process group)
   and kill -9 the whole group at a random moment, half of the --runs times; then run it to completion;
2. incremental CDC: start the change workload (`inventory-bronze changes --rate R`), and kill -9 the
   pipeline the other half of the times while the workload runs, alternately the continuous CDC update
   (`run --continuous --pipeline inventory_bronze_cdc`, first) and a triggered update of both pipelines;
   stop the workload, run to completion;
3. compare bronze with the source row for row (`inventory_bronze.reconcile.compare_rows`: keys and every
   column, PII decrypted, SCD type 2 tables' current rows, quarantined rows accounted for), and check that
   the event log records every killed update as FAILED (interrupted) — and the audit table too, when the
   module `inventory_bronze.audit` exists.

Prints runs, kills, rows lost / duplicated / wrong (all must be 0) and killed updates recorded; exits 1 if
any of them is not as it must be. `--json FILE` writes the figures for bench/reliability_summary.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inventory_bronze.source.capture_slot import ensure_capture
from inventory_devkit import project

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    runs: int = 0  # pipeline processes started
    kills: int = 0  # of them killed with SIGKILL
    kills_planned: int = 0
    kills_initial: int = 0
    kills_incremental: int = 0
    kills_continuous: int = 0  # of the incremental ones, in a continuous CDC update
    completed: int = 0
    failed_runs: int = 0  # runs that ended (not killed) with an error, each run again
    failures: list[str] = field(default_factory=list)  # their errors
    unrecovered: bool = False  # a run after the kills kept failing
    killed_updates: list[str] = field(default_factory=list)  # update ids running at a kill
    recorded_failed: int = 0  # of them, recorded as FAILED (interrupted) in the event log
    audit_checked: bool = False
    rows_source: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    rows_wrong: int = 0
    rows_extra: int = 0
    rows_quarantined: int = 0
    wrong_credentials_failed_clearly: bool = False
    files_scanned: int = 0
    leaks: list[str] = field(default_factory=list)  # "<canary> in <place>"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.rows_lost == self.rows_duplicated == self.rows_wrong == self.rows_extra == 0
            and self.recorded_failed == len(self.killed_updates)
            and not self.unrecovered
            and self.wrong_credentials_failed_clearly
            and not self.leaks
        )


# canary PII values: they must never appear in plaintext in any file, log or message
CANARY_NAME = "Canary Qz7Wk Plaintext"
CANARY_EMAIL = "canary.qz7wk@example.org"
CANARY_BAD_EMAIL = "canary-qz7wk-malformed"  # a rejected row: quarantine keeps it, encrypted too
CANARY_MANAGER = "Canary Qz7Wk Manager"
CANARY_PII = (CANARY_NAME, CANARY_EMAIL, CANARY_BAD_EMAIL, CANARY_MANAGER)
CANARY_WRONG_PASSWORD = "Canary-Wrong-Pw-Qz7Wk-0123456789"
CANARY_ROWS = (
    'INSERT INTO tests.customers ("Customer_Name", "Email", "Phone", "Address", "Created_At") '
    f"VALUES ('{CANARY_NAME}', '{CANARY_EMAIL}', '+41 00 000 00 00', 'Canary Street 1', now()::timestamp)",
    'INSERT INTO tests.customers ("Customer_Name", "Email", "Created_At") '
    f"VALUES ('{CANARY_NAME} Two', '{CANARY_BAD_EMAIL}', now()::timestamp)",
    f"UPDATE tests.warehouses SET \"Manager_Name\" = '{CANARY_MANAGER}' "
    'WHERE "Warehouse_ID" = (SELECT min("Warehouse_ID") FROM tests.warehouses)',
)


def _say(text: str) -> None:
    print(text, flush=True)


def _env(pii_key: str) -> dict[str, str]:
    from inventory_bronze import pii
    from inventory_bronze.secrets import env_var_for

    env = dict(os.environ)
    env[env_var_for(pii.DEFAULT_KEY_SECRET)] = pii_key
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def _running_updates(storage: Path) -> list[str]:
    """Ids of the updates running now: each pipeline's marker STORAGE/<pipeline>/system/running.json."""
    out = []
    for marker in sorted(storage.glob("*/system/running.json")):
        try:
            update_id = json.loads(marker.read_text()).get("update_id")
        except (OSError, ValueError):
            continue
        if update_id:
            out.append(update_id)
    return out


CONTINUOUS = ["--continuous", "--pipeline", "inventory_bronze_cdc", "--max-seconds", "300"]


def _start_run(storage: Path, env: dict[str, str], log: Path, extra: list[str] = ()) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "inventory_bronze",
        "run",
        "--storage",
        str(storage),
        "--quiet",
        "--no-reconcile",
        *extra,
    ]
    with open(log, "a") as out:
        out.write(f"\n=== {' '.join(cmd)}\n")
        out.flush()
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _errors_since(log: Path, offset: int) -> list[str]:
    """The `error: pipeline ...` lines a run printed (its failed flows), from `offset` of the log."""
    with open(log, errors="replace") as handle:
        handle.seek(offset)
        lines = [line.strip() for line in handle if line.startswith("error:") or "failed: [" in line]
    return lines[:10] or ["no error line: see the log"]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Suite:
    def __init__(
        self, storage: Path, env: dict[str, str], rng: random.Random, log: Path, max_window: float = 120.0
    ) -> None:
        self.storage, self.env, self.rng, self.log = storage, env, rng, log
        self.max_window = max_window  # kill within this many seconds of the first update's start
        self.figures = Figures()
        self.durations: list[float] = []
        self.log_offset = 0

    def expected_seconds(self) -> float:
        """How long the updates of a run take (from the first update marker to the end), on average."""
        return sum(self.durations) / len(self.durations) if self.durations else 60.0

    def _wait(
        self, proc: subprocess.Popen, until: float | None, stale: set[str] = frozenset()
    ) -> float | None:
        """Poll until the process ends (None) or `until` (a monotonic time, or None for the first update
        marker of this process: one not in `stale`, the markers killed updates left); returns when."""
        while proc.poll() is None:
            now = time.monotonic()
            if until is None and set(_running_updates(self.storage)) - stale:
                return now
            if until is not None and now >= until:
                return now
            time.sleep(0.1)
        return None

    def attempt_kill(self, phase: str, continuous: bool = False) -> None:
        """One run killed at a random moment: mostly while an update runs (uniform over the updates'
        expected duration; a continuous update: 3-40 s into it, its streams under load), sometimes while
        the process starts (Spark, loading the pipeline)."""
        stale = set(_running_updates(self.storage))  # markers of killed updates, until the next run
        started = time.monotonic()
        proc = _start_run(self.storage, self.env, self.log, CONTINUOUS if continuous else [])
        self.figures.runs += 1
        if continuous:
            update_started = self._wait(proc, None, stale)
            at = None
            if update_started is not None:
                at = self._wait(proc, update_started + self.rng.uniform(3.0, min(40.0, self.max_window)))
        elif self.rng.random() < 0.15:
            at = self._wait(proc, started + self.rng.uniform(1.0, 20.0))
        else:
            update_started = self._wait(proc, None, stale)
            at = None
            if update_started is not None:
                window = min(self.expected_seconds(), self.max_window)
                at = self._wait(proc, update_started + self.rng.uniform(0.0, window))
        if at is None or proc.poll() is not None:  # it finished first
            proc.wait()
            self._finished(proc, started)
            return
        running = [u for u in _running_updates(self.storage) if u not in stale]
        _kill_group(proc)
        self.figures.kills += 1
        setattr(self.figures, f"kills_{phase}", getattr(self.figures, f"kills_{phase}") + 1)
        self.figures.kills_continuous += 1 if continuous else 0
        self.figures.killed_updates.extend(running)
        where = f"update(s) {', '.join(u[:8] for u in running)} running" if running else "no update running"
        _say(
            f"  kill -9 #{self.figures.kills} ({phase}{', continuous' if continuous else ''}) "
            f"{time.monotonic() - started:5.1f} s after start: {where}"
        )

    def complete(self, attempts: int = 3) -> None:
        """Run to completion (after kills): the runtime must recover by itself. A run that fails (on a
        loaded machine Spark's Python workers can time out) is reported and run again, up to `attempts`."""
        for _ in range(attempts):
            stale = set(_running_updates(self.storage))
            started = time.monotonic()
            proc = _start_run(self.storage, self.env, self.log)
            self.figures.runs += 1
            update_started = self._wait(proc, None, stale)
            proc.wait()
            self._finished(proc, started, update_started)
            if proc.returncode == 0:
                return
        self.figures.unrecovered = True

    def _finished(self, proc: subprocess.Popen, started: float, update_started: float | None = None) -> None:
        seconds = time.monotonic() - started
        if proc.returncode == 0:
            self.figures.completed += 1
            if update_started is not None:
                self.durations.append(time.monotonic() - update_started)
            _say(f"  run completed in {seconds:.0f} s")
        else:
            self.figures.failed_runs += 1
            reasons = _errors_since(self.log, self.log_offset)
            self.figures.failures.extend(reasons)
            _say(f"  run FAILED (exit {proc.returncode}) after {seconds:.0f} s: {'; '.join(reasons)[:600]}")
        self.log_offset = self.log.stat().st_size


def _prepare_source(scale: float, seed: int) -> None:
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.capture_slot import CaptureNames, drop_capture
    from inventory_devkit.postgres.ddl import create_schema
    from inventory_devkit.postgres.load import seed_database
    from inventory_devkit.postgres.server import ensure_server

    info = ensure_server()
    with open_connection(source_connection()) as conn:
        for qualified in project.bronze_config().capture_tables:
            drop_capture(conn, CaptureNames.for_table(qualified))
    create_schema(info, drop=True)
    report = seed_database(info, scale=scale, seed=seed, dirty_rate=0.05, quiet=True)
    with info.connect(autocommit=True) as conn:
        for statement in CANARY_ROWS:
            conn.execute(statement)
    ensure_capture(project.bronze_config().capture_tables)
    _say(f"source: seeded scale {scale:g} ({report.total_rows:,} rows), capture set up")


PII_ENV = ""  # set in run_suite: the environment variable holding the PII key


def _db_password() -> str:
    from inventory_devkit.postgres.server import server_info

    return server_info().password


def _wrong_credentials_run(storage: Path, env: dict[str, str], log: Path) -> bool:
    """One run with a wrong (canary) database password: it must fail, saying which secret to fix, and
    never show the password (the leak scan checks every log and file afterwards)."""
    from inventory_bronze.secrets import env_var_for

    bad = {**env, env_var_for("KPassword"): CANARY_WRONG_PASSWORD}
    start = log.stat().st_size if log.exists() else 0
    proc = _start_run(storage, bad, log)
    proc.wait()
    with open(log, errors="replace") as handle:
        handle.seek(start)
        text = handle.read()
    clear = proc.returncode != 0 and "KPassword" in text and "password" in text.lower()
    _say(f"  wrong credentials: exit {proc.returncode}, error names secret 'KPassword': {clear}")
    return clear


def _text_of(path: Path) -> str:
    """A file's content as text: parquet decoded (values, schema, metadata), anything else as bytes."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            meta = pq.read_metadata(path).metadata or {}
            return repr(table.to_pylist()) + repr(table.schema) + repr(meta)
        except Exception as err:  # an unreadable parquet file is a finding of its own
            return f"<unreadable parquet {err}>"
    return path.read_bytes().decode("utf-8", errors="replace")


def scan_for_leaks(
    roots: list[Path], secrets: list[str], pii_values: tuple[str, ...]
) -> tuple[int, list[str]]:
    """Where a secret or a PII canary appears in plaintext: every file under `roots` (parquet decoded)."""
    files = [p for root in roots for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()]
    leaks = []
    for path in files:
        text = _text_of(path)
        raw = path.read_bytes()
        for canary in [*secrets, *pii_values]:
            if canary and (canary in text or canary.encode() in raw):
                kind = "secret" if canary in secrets else "PII"
                leaks.append(f"{kind} {canary[:6]}... in {path}")
    return len(files), leaks


def _start_workload(env: dict[str, str], seed: int, rate: float, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "inventory_bronze", "changes", "--rate", str(rate), "--duration", "86400"]
    cmd += ["--seed", str(seed)]
    with open(log, "a") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _check_event_log(spark: object, storage: Path, figures: Figures) -> None:
    """Each killed update has an update_progress event FAILED with interrupted=true (written by the next run)."""
    recorded: set[str] = set()
    for path in sorted(storage.glob("*/system/events")):
        if not (path / "_delta_log").is_dir():
            continue
        rows = (
            spark.read.format("delta")  # type: ignore[attr-defined]
            .load(str(path))
            .where("event_type = 'update_progress'")
            .select("origin.update_id", "details")
            .collect()
        )
        for row in rows:
            details = json.loads(row.details or "{}")
            progress = details.get("update_progress", details)
            if progress.get("state") == "FAILED" and progress.get("interrupted"):
                recorded.add(row.update_id)
    figures.recorded_failed = sum(1 for u in figures.killed_updates if u in recorded)
    if importlib.util.find_spec("inventory_bronze.audit") is not None:
        figures.audit_checked = _check_audit(spark, storage, figures)


def _check_audit(spark: object, storage: Path, figures: Figures) -> bool:
    """The audit table (`inventory_bronze.audit`, derived from the event logs) must name each killed update
    too. Best effort while that module is young: a failure to derive it is reported, not hidden."""
    try:
        from inventory_bronze.audit.store import AUDIT_LOG, audit_local, default_targets

        audit_local(spark, storage, default_targets(project.bronze_config()))
        tables = [p for p in storage.rglob(AUDIT_LOG) if (p / "_delta_log").is_dir()]
        if not tables:
            _say(f"  audit: no {AUDIT_LOG} table under {storage}: not checked")
            return False
        df = spark.read.format("delta").load(str(tables[0]))  # type: ignore[attr-defined]
        text = " ".join(str(r) for r in df.collect())
    except Exception as err:  # noqa: BLE001 - reported, and the audit check counts as not done
        _say(f"  audit: could not be derived ({type(err).__name__}: {str(err)[:200]}): not checked")
        return False
    missing = [u for u in figures.killed_updates if u not in text]
    if missing:
        _say(f"  audit: {len(missing)} killed update(s) not in {AUDIT_LOG}: {missing[:3]}")
        figures.recorded_failed -= len(missing)
    return True


def compare(storage: Path, figures: Figures) -> None:
    from inventory_bronze.reconcile import compare_rows, format_rows
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.spark_session import get_spark

    spark = get_spark("crash-suite", {"spark.sql.shuffle.partitions": "2"})
    with open_connection(source_connection()) as conn:
        rows = compare_rows(spark, storage, conn, project.bronze_config())
    _say(format_rows(rows))
    figures.rows_source = sum(r.source_rows for r in rows)
    figures.rows_lost = sum(r.lost for r in rows)
    figures.rows_duplicated = sum(r.duplicated for r in rows)
    figures.rows_wrong = sum(r.wrong for r in rows)
    figures.rows_extra = sum(r.extra for r in rows)
    figures.rows_quarantined = sum(r.quarantined for r in rows)
    _check_event_log(spark, storage, figures)


def run_suite(
    kills: int,
    scale: float,
    seed: int,
    storage: Path,
    log: Path,
    workload_rate: float = 20.0,
    max_window: float = 120.0,
    max_minutes: float | None = None,
) -> Figures:
    from inventory_bronze import pii

    started = time.monotonic()
    rng = random.Random(seed)
    _prepare_source(scale, seed)
    env = _env(pii.generate_key())
    global PII_ENV
    from inventory_bronze.secrets import env_var_for

    PII_ENV = env_var_for(pii.DEFAULT_KEY_SECRET)
    os.environ.update({k: v for k, v in env.items() if k not in os.environ or os.environ[k] != v})
    pii.reset_keys()
    suite = Suite(storage, env, rng, log, max_window)
    suite.figures.kills_planned = kills
    initial = max(1, kills // 2)
    budget = max_minutes * 60 if max_minutes else float("inf")
    _say(f"phase 1: initial load, {initial} kill(s)")
    while suite.figures.kills < initial and time.monotonic() - started < 0.4 * budget:
        suite.attempt_kill("initial")
    suite.complete()
    suite.figures.wrong_credentials_failed_clearly = _wrong_credentials_run(storage, env, log)
    suite.log_offset = log.stat().st_size
    _say(f"phase 2: incremental CDC with the change workload running, {kills - initial} kill(s)")
    workload = _start_workload(env, seed, workload_rate, log)
    try:
        while suite.figures.kills < kills and time.monotonic() - started < 0.8 * budget:
            suite.attempt_kill("incremental", continuous=suite.figures.kills_incremental % 2 == 0)
    finally:
        workload.send_signal(signal.SIGTERM)
        try:
            workload.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_group(workload)
    suite.complete()
    suite.figures.seconds = time.monotonic() - started
    state = storage.parent / "crash-suite-state.json"
    state.write_text(json.dumps({"figures": asdict(suite.figures), "pii_key": env[PII_ENV], "log": str(log)}))
    return check(storage, suite.figures, env[PII_ENV], log)


def check(storage: Path, figures: Figures, pii_key: str, log: Path) -> Figures:
    """Row-for-row comparison, event log (and audit) check, leak scan: after the runs, or alone with
    --check-only on the storage of an earlier suite."""
    started = time.monotonic()
    _say("comparing bronze with PostgreSQL row for row")
    compare(storage, figures)
    _say("scanning logs, console output, event logs and every Delta file for canaries")
    secrets = [CANARY_WRONG_PASSWORD, pii_key, _db_password()]
    figures.files_scanned, figures.leaks = scan_for_leaks([storage, log], secrets, CANARY_PII)
    figures.seconds += time.monotonic() - started
    return figures


def summary(f: Figures) -> str:
    lines = [
        f"runs:              {f.runs} ({f.completed} completed, {f.failed_runs} failed and run again"
        + (", NOT RECOVERED" if f.unrecovered else "")
        + ")",
        *[f"    failed: {line[:300]}" for line in dict.fromkeys(f.failures)][:6],
        f"kills (kill -9):   {f.kills} of {f.kills_planned} planned ({f.kills_initial} during the initial load, "
        f"{f.kills_incremental} during incremental CDC with the change workload, {f.kills_continuous} of them "
        f"in a continuous update)",
        f"rows compared:     {f.rows_source:,} source rows ({f.rows_quarantined:,} held in quarantine)",
        f"rows lost:         {f.rows_lost}",
        f"rows duplicated:   {f.rows_duplicated}",
        f"rows wrong:        {f.rows_wrong}",
        f"deletes lost:      {f.rows_extra}",
        f"killed updates:    {len(f.killed_updates)} running at a kill, {f.recorded_failed} recorded FAILED "
        f"(interrupted) in the event log" + (" and the audit table" if f.audit_checked else ""),
        f"wrong credentials: {'failed clearly, naming the secret' if f.wrong_credentials_failed_clearly else 'NOT CLEAR'}",
        f"leaks found:       {len(f.leaks)} ({f.files_scanned:,} files, logs and console output scanned for "
        f"the DB password, the PII key and {len(CANARY_PII)} PII canaries)",
        *[f"    {leak}" for leak in f.leaks[:10]],
        f"time:              {f.seconds:.0f} s",
        f"result:            {'PASS' if f.ok else 'FAIL'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, metavar="N", help="kills in all (default 20)")
    parser.add_argument("--scale", type=float, default=0.002, help="seed scale (default 0.002)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of data, workload and kills")
    parser.add_argument(
        "--kill-window",
        type=float,
        default=120.0,
        metavar="S",
        help="kill within S s of an update's start, at most (default 120; on a fast machine the updates' "
        "whole expected duration is shorter and is used)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="time box: stop killing after 40%% (initial load) and 80%% (incremental) of M minutes, then "
        "recover and compare; the summary says how many kills were done",
    )
    parser.add_argument("--workload-rate", type=float, default=20.0, help="changes/s during phase 2")
    parser.add_argument(
        "--pg-dir", type=Path, help="PostgreSQL server folder (default: a fresh temporary one)"
    )
    parser.add_argument("--storage", type=Path, help="pipeline storage (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="no runs: compare, check the event log and scan for leaks on --storage/--pg-dir of an earlier suite",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if args.check_only and not (args.storage and args.pg_dir):
        parser.error("--check-only needs --storage and --pg-dir of the earlier suite")

    from inventory_devkit.postgres.server import ENV_DATA_DIR, ENV_SECRETS_FILE, stop_server

    temp = Path(tempfile.mkdtemp(prefix="crash-suite-"))
    pg_dir = args.pg_dir or temp / "postgres"
    os.environ[ENV_DATA_DIR] = str(pg_dir)
    if args.pg_dir is None or ENV_SECRETS_FILE not in os.environ:
        os.environ[ENV_SECRETS_FILE] = str(pg_dir.parent / "secrets" / "local.json")
    storage = args.storage or temp / "pipelines"
    log = temp / "runs.log"
    _say(
        f"crash suite: {args.runs} kills, scale {args.scale:g}, seed {args.seed}; storage {storage}; log {log}"
    )
    try:
        if args.check_only:
            from inventory_bronze import pii
            from inventory_bronze.secrets import env_var_for

            saved = json.loads((storage.parent / "crash-suite-state.json").read_text())
            os.environ[env_var_for(pii.DEFAULT_KEY_SECRET)] = saved["pii_key"]
            global PII_ENV
            PII_ENV = env_var_for(pii.DEFAULT_KEY_SECRET)
            from inventory_devkit.postgres.server import ensure_server

            ensure_server()
            figures = check(storage, Figures(**saved["figures"]), saved["pii_key"], Path(saved["log"]))
        else:
            figures = run_suite(
                args.runs,
                args.scale,
                args.seed,
                storage,
                log,
                args.workload_rate,
                args.kill_window,
                args.max_minutes,
            )
    finally:
        if args.pg_dir is None:
            stop_server(pg_dir)
    print()
    _say(summary(figures))
    if args.json:
        args.json.write_text(json.dumps({**asdict(figures), "ok": figures.ok}, indent=2))
    if args.pg_dir is None and figures.ok and args.storage is None:
        shutil.rmtree(temp, ignore_errors=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
