"""The leak scan of the crash suite finds what it looks for: a canary in plaintext in a log, inside a
compressed parquet file (decoded), or in a Delta log line; ciphertext of the canary is no finding. The crash
suite runs it over every file, log and console output of its runs (test_crash_suite asserts 0 leaks)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from inventory_bronze import pii
from inventory_bronze.secrets import SecretValue

REPO = Path(__file__).resolve().parents[2]


def _suite() -> Any:
    spec = importlib.util.spec_from_file_location("crash_suite", REPO / "bench" / "crash_suite.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_scan_finds_canaries_in_logs_parquet_and_delta_logs_but_not_in_ciphertext(tmp_path: Path) -> None:
    suite = _suite()
    keys = pii.PiiKeys.from_secret(SecretValue(pii.generate_key(), "k", "test"))
    name = "Canary Scan Test Name"
    clean = tmp_path / "clean"
    clean.mkdir()
    pq.write_table(
        pa.table({"Customer_Name": [pii.encrypt_value("customers", "Customer_Name", name, keys=keys)]}),
        clean / "part-0.snappy.parquet",
        compression="snappy",
    )
    (clean / "run.log").write_text("update COMPLETED\n")
    assert suite.scan_for_leaks([clean], ["s3cr3t-canary"], (name,)) == (2, [])

    dirty = tmp_path / "dirty"
    (dirty / "_delta_log").mkdir(parents=True)
    pq.write_table(pa.table({"Customer_Name": [name]}), dirty / "part-0.snappy.parquet", compression="snappy")
    (dirty / "_delta_log" / "00000.json").write_text('{"commitInfo": {"password": "s3cr3t-canary"}}')
    (dirty / "console.log").write_text("error: password s3cr3t-canary refused\n")
    files, leaks = suite.scan_for_leaks([dirty], ["s3cr3t-canary"], (name,))
    assert files == 3 and len(leaks) == 3
    assert {Path(leak.split(" in ", 1)[1]).name for leak in leaks} == {
        "part-0.snappy.parquet",
        "00000.json",
        "console.log",
    }
