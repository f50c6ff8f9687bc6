"""The db, seed and changes sub-commands, through the real entry point."""

from __future__ import annotations

import json

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
