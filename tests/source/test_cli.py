"""The db, seed and changes sub-commands, through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inventory_bronze.cli import build_parser, main


def _json_tail(text: str) -> dict:
    return json.loads(text[text.index("\n{") + 1 :] if not text.startswith("{") else text)


def test_help_of_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command, words in {
        "db": ["start", "stop", "status", "wal_level=logical"],
        "seed": ["--scale", "--dirty-rate", "--seed", "order_details 2M"],
        "changes": ["--count", "--rate", "--duration", "--truncate", "--add-column", "TOASTed"],
    }.items():
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([command, "--help"])
        assert done.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        for word in words:
            assert word in out, (command, word)


def test_db_status_and_start_print_the_url_not_the_password(pg_server, capsys) -> None:
    assert main(["db", "status"]) == 0
    assert main(["db", "start"]) == 0
    out = capsys.readouterr().out
    assert f"127.0.0.1:{pg_server.port}/DE" in out and "running" in out
    assert pg_server.password not in out


def test_seed_then_changes(pg_server, capsys) -> None:
    assert main(["seed", "--scale", "0.002", "--seed", "4", "--dirty-rate", "0.05", "--json"]) == 0
    report = _json_tail(capsys.readouterr().out)
    assert report["rows"]["order_details"] == 4000 and report["dirty"]["orphaned_reference"] > 0
    assert main(["changes", "--count", "50", "--seed", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "row changes in" in out
    assert _json_tail(out)["changes"] >= 50


def test_argument_errors(capsys) -> None:
    for argv in (
        ["seed", "--scale", "0"],
        ["seed", "--dirty-rate", "0.9"],
        ["changes"],
        ["changes", "--count", "5", "--rate", "3"],
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
    with pytest.raises(SystemExit):
        main(["changes", "--rate", "5"])
    assert "--duration" in capsys.readouterr().err


def test_bad_option_values_are_refused_in_one_line_before_anything_runs(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Checked by argparse (exit 2, the option named, no traceback), before a server or Spark starts."""
    a_file = tmp_path / "storage.txt"
    a_file.write_text("not a folder")
    for argv, words in (
        (["demo", "--scale", "0"], ["--scale", "must be > 0"]),
        (["demo", "--scale", "lots"], ["--scale", "expected a number"]),
        (["demo", "--dirty-rate", "2"], ["--dirty-rate", "between 0 and 0.5"]),
        (["demo", "--changes", "-5"], ["--changes", "must be >= 0"]),
        (["demo", "--continuous-seconds", "-1"], ["--continuous-seconds", "must be >= 0"]),
        (["run", "--max-seconds", "-3"], ["--max-seconds", "must be >= 0"]),
        (["dlt", "run", str(tmp_path), "--storage", str(tmp_path), "--conf", "KEY"], ["--conf", "KEY=VALUE"]),
        (["dlt", "run", str(tmp_path), "--storage", str(tmp_path), "--workers", "0"], ["--workers", ">= 1"]),
        (["dlt", "run", str(tmp_path), "--storage", str(a_file)], ["--storage", "is a file"]),
        (["run", "--storage", str(a_file)], ["--storage", "is a file"]),
        (["reconcile", "--settle-seconds", "-1"], ["--settle-seconds", "must be >= 0"]),
        (["reconcile", "--secret-names", "KConnectionString"], ["--secret-names", "expected 3 arguments"]),
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        err = capsys.readouterr().err
        assert all(w in err for w in words) and "Traceback" not in err, (argv, err)


def test_reconcile_refuses_an_incomplete_catalog_or_a_missing_storage_in_one_line(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for argv, words in (
        (["reconcile", "--catalog", "workspace"], ["--catalog, --schema and --event-log go together"]),
        (["reconcile", "--storage", str(tmp_path / "none")], [str(tmp_path / "none"), "run"]),
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert all(w in err for w in words) and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_demo_replaces_only_a_storage_folder_it_created(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`demo --storage DIR` wipes DIR on each run: never a folder it did not create, nor a file; refused in
    one line before anything runs (the demo also resets the source's capture)."""
    from pathlib import Path

    from inventory_bronze.cli.demo import DEFAULT_STORAGE, MARKER, _replace_storage, storage_problem

    archive = tmp_path / "pipelines"
    (archive / "inventory_bronze_cdc" / "tables").mkdir(parents=True)
    (archive / "inventory_bronze_cdc" / "tables" / "part-0.parquet").write_bytes(b"irreplaceable")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for storage, words in ((archive, "did not create"), (a_file, "is a file")):
        assert main(["demo", "--storage", str(storage)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"demo: --storage {storage}") and words in err and "Traceback" not in err
    assert (archive / "inventory_bronze_cdc" / "tables" / "part-0.parquet").read_bytes() == b"irreplaceable"
    assert a_file.read_text() == "mine"

    empty, fresh, own = tmp_path / "empty", tmp_path / "new", tmp_path / "own"
    empty.mkdir()
    _replace_storage(own)
    (own / "inventory_bronze_batch").mkdir()
    assert (own / MARKER).is_file()
    assert [storage_problem(p) for p in (empty, fresh, own, DEFAULT_STORAGE)] == [None] * 4
    _replace_storage(own)
    assert [p.name for p in Path(own).iterdir()] == [MARKER]


def test_seed_into_a_folder_without_a_server_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A mistyped --data-dir neither creates nor starts a cluster: one line names the folder and the fix."""
    typo = tmp_path / "postgress"
    assert main(["seed", "--data-dir", str(typo), "--scale", "0.002"]) == 1
    err = capsys.readouterr().err
    assert f"--data-dir {typo} holds no local server" in err and "db start --data-dir" in err
    assert "Traceback" not in err and not typo.exists()


def test_an_installation_without_the_local_tools_offers_the_jobs_commands(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The deployed wheel holds no inventory_devkit: `inventory-bronze` then offers what the jobs call
    (reconcile, audit, maintain, pii), not the local commands; their defaults need no checkout."""
    import importlib.util

    from inventory_bronze.cli import LOCAL_COMMANDS, options

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "inventory_devkit" else real(name, *a)
    )
    offered = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {"reconcile", "audit", "maintain", "pii", "report", "status", "capture"} <= offered
    assert not offered & LOCAL_COMMANDS
    monkeypatch.setitem(__import__("sys").modules, "inventory_devkit", None)  # not importable at all
    assert options.local_storage() is None
    with pytest.raises(Exception, match="--config is required here"):
        options.config_path(None)


DRIVER_TABLE = """
import dlt

@dlt.table
def session_jars():
    return spark.createDataFrame([(spark.conf.get("spark.jars"),)], "jars STRING")
"""


def test_dlt_run_is_the_local_runtime_command_with_the_checkout_jars(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`inventory-bronze dlt run` is the product's alias of `localdlt run`: the same options, and an update
    whose session loads the checkout's jars (PostgreSQL's JDBC driver among them) with $LOCALDLT_JARS unset."""
    with pytest.raises(SystemExit) as done:
        main(["dlt", "run", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in ("--storage", "--conf", "--bundle", "--pipeline", "--full-refresh-tables", "--continuous",
                   "--max-seconds", "--workers", "--jit", "--quiet", "--name"):  # fmt: skip
        assert option in out, option
    source = tmp_path / "jars.py"
    source.write_text(DRIVER_TABLE)
    storage = tmp_path / "storage"
    env = {k: v for k, v in os.environ.items() if k != "LOCALDLT_JARS"}
    done_run = subprocess.run(
        [
            str(Path(sys.executable).parent / "inventory-bronze"),
            "dlt",
            "run",
            str(source),
            "--storage",
            str(storage),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PYSPARK_PYTHON": sys.executable},
    )
    assert done_run.returncode == 0, done_run.stderr
    assert "session_jars" in done_run.stdout and "COMPLETED" in done_run.stdout
    import pyarrow.parquet as pq

    files = sorted((storage / "tables" / "session_jars").glob("*.parquet"))
    jars = [row for f in files for row in pq.read_table(f).column("jars").to_pylist()]
    assert len(jars) == 1 and "postgresql" in jars[0] and "delta-spark" in jars[0], jars
    missing = subprocess.run(
        [str(Path(sys.executable).parent / "inventory-bronze"), "dlt", "run", str(tmp_path / "nope.py"),
         "--storage", str(storage)],
        capture_output=True, text=True, timeout=120, env={**env, "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "nope.py" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
