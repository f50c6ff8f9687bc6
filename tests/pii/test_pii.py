"""PII protection: deterministic AES-256-GCM and the join hash, in Python and in Spark; fail-closed key
handling; no plaintext in the Delta files; no key in plans, errors, reprs or pickles; the CLI."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from inventory_bronze import pii
from inventory_bronze.config import PiiTreatment
from inventory_bronze.errors import PiiProtectionError
from inventory_bronze.secrets import SecretValue, env_var_for

KEY = base64.b64encode(bytes(range(7, 39))).decode()  # a fixed test key (32 bytes)
OTHER_KEY = base64.b64encode(bytes(range(100, 132))).decode()
SECRET = pii.DEFAULT_KEY_SECRET
CANARY_EMAIL = "Canary.7f3a9c@Example.org"
CANARY_NAME = "Zoë Canary-Ødegård 北京 🙂"
CANARY_DOB = dt.date(1901, 2, 3)
LONG = "x" * 20_000 + "ü-tail"
CUSTOMERS_PII = {
    "Customer_Name": PiiTreatment.encrypt,
    "Email": PiiTreatment.encrypt_and_hash,
    "Date_Of_Birth": PiiTreatment.encrypt,
}
SCHEMA = "Customer_ID int, Customer_Name string, Email string, Date_Of_Birth date, City string"
ROWS = [
    (1, CANARY_NAME, f"  {CANARY_EMAIL} ", CANARY_DOB, "Berlin"),
    (2, None, None, None, None),
    (3, "", "", dt.date(2000, 12, 31), ""),
    (4, LONG, "b@example.org", dt.date(1970, 1, 1), "Köln"),
    (5, CANARY_NAME, CANARY_EMAIL.lower(), CANARY_DOB, "Berlin"),
]


@pytest.fixture(autouse=True)
def pii_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The test key through the secrets chain's environment provider; no vault, scope or local file."""
    for var in ("INVENTORY_BRONZE_KEYVAULT_URL", "DATABRICKS_RUNTIME_VERSION", pii.ENV_KEY_SECRET):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("INVENTORY_BRONZE_SECRETS_FILE", str(tmp_path / "no-secrets.json"))
    monkeypatch.setenv(env_var_for(SECRET), KEY)
    pii.reset_keys()
    yield KEY
    pii.reset_keys()


def _key_forms() -> list[str]:
    """Every textual form of the data key and its sub-keys a leak would show."""
    raw = base64.b64decode(KEY)
    keys = pii.load_keys()
    forms = [KEY, base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()]
    for sub in (keys._encrypt, keys._nonce, keys._hash):
        forms += [base64.b64encode(sub).decode().rstrip("="), sub.hex()]
    return forms


# --- pure Python ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "a", CANARY_NAME, LONG, "1901-02-03", " padded "])
def test_round_trip_in_python(value: str) -> None:
    ciphertext = pii.encrypt_value("customers", "Customer_Name", value)
    assert ciphertext is not None and value not in ciphertext or value == ""
    assert base64.urlsafe_b64decode(ciphertext + "=" * (-len(ciphertext) % 4)).startswith(b"v1")
    assert pii.decrypt_value("customers", "Customer_Name", ciphertext) == value
    assert pii.decrypt_value("CUSTOMERS", "customer_name", ciphertext) == value  # names are case-insensitive


def test_null_stays_null() -> None:
    assert pii.encrypt_value("customers", "Email", None) is None
    assert pii.decrypt_value("customers", "Email", None) is None
    assert pii.hash_value("Email", None) is None


def test_deterministic_per_column_and_bound_to_it() -> None:
    first = pii.encrypt_value("customers", "Phone", "+49 30 1234")
    assert first == pii.encrypt_value("customers", "Phone", "+49 30 1234")
    assert first != pii.encrypt_value("customers", "Address", "+49 30 1234")
    assert first != pii.encrypt_value("suppliers", "Phone", "+49 30 1234")
    assert first != pii.encrypt_value("customers", "Phone", "+49 30 1235")


def test_wrong_column_tampered_and_foreign_values_fail_clearly() -> None:
    ciphertext = pii.encrypt_value("customers", "Phone", "+49 30 1234")
    assert ciphertext is not None
    with pytest.raises(PiiProtectionError, match=r"does not decrypt as customers\.address") as err:
        pii.decrypt_value("customers", "Address", ciphertext)
    assert "+49" not in str(err.value) and ciphertext not in str(err.value)
    raw = bytearray(base64.urlsafe_b64decode(ciphertext + "=" * (-len(ciphertext) % 4)))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(PiiProtectionError, match="altered"):
        pii.decrypt_value("customers", "Phone", tampered)
    for garbage in ("", "not base64 !", "djE", base64.urlsafe_b64encode(b"v2" + bytes(40)).decode()):
        with pytest.raises(PiiProtectionError, match="not a PII ciphertext"):
            pii.decrypt_value("customers", "Phone", garbage)
    other = pii.PiiKeys.from_secret(SecretValue(OTHER_KEY, SECRET, "test"))
    with pytest.raises(PiiProtectionError, match="another key"):
        pii.decrypt_value("customers", "Phone", ciphertext, keys=other)
    with pytest.raises(PiiProtectionError, match="not an identifier"):
        pii.encrypt_value("customers; drop", "Phone", "x")


def test_hash_normalization() -> None:
    email = pii.hash_value("Email", "a.b@example.org")
    assert email is not None and len(email) == 64 and int(email, 16) >= 0
    assert pii.hash_value("Email", "  A.B@Example.ORG\t") == email
    assert pii.hash_value("Contact_Email", "a.b@example.org") == email  # joins across tables
    assert pii.hash_value("Phone", " +49 30 ") == pii.hash_value("Phone", "+49 30")
    assert pii.hash_value("Customer_Name", "Ann") != pii.hash_value("Customer_Name", "ann")  # case kept
    other = pii.PiiKeys.from_secret(SecretValue(OTHER_KEY, SECRET, "test"))
    assert pii.hash_value("Email", "a.b@example.org", keys=other) != email  # keyed


def test_missing_key_fails_closed_naming_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(env_var_for(SECRET))
    pii.reset_keys()
    with pytest.raises(PiiProtectionError, match=SECRET) as err:
        pii.encrypt_value("customers", "Email", CANARY_EMAIL)
    assert CANARY_EMAIL not in str(err.value)
    assert "keygen" in str(err.value)


@pytest.mark.parametrize("bad", ["", "c2hvcnQ=", "!!!not-base64-at-all!!!" * 2, KEY[:-4], KEY + "AAAA"])
def test_malformed_key_fails_closed_without_showing_it(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(env_var_for(SECRET), bad)
    pii.reset_keys()
    with pytest.raises(
        PiiProtectionError, match=f"Secret '{SECRET}'.*not a base64-encoded 256-bit key"
    ) as err:
        pii.load_keys()
    assert not bad or bad not in str(err.value)


def test_url_safe_key_and_configurable_secret_name(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = pii.encrypt_value("customers", "Email", "x@y.z")
    monkeypatch.setenv(env_var_for("OtherPiiKey"), base64.urlsafe_b64encode(base64.b64decode(KEY)).decode())
    monkeypatch.setenv(pii.ENV_KEY_SECRET, "OtherPiiKey")
    monkeypatch.delenv(env_var_for(SECRET))
    pii.reset_keys()
    assert pii.load_keys().secret_name == "OtherPiiKey"
    assert pii.encrypt_value("customers", "Email", "x@y.z") == reference


def test_key_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    first = pii.load_keys()
    monkeypatch.setenv(env_var_for(SECRET), OTHER_KEY)
    assert pii.load_keys() is first


def test_secret_value_and_keys_never_show_the_key() -> None:
    secret = SecretValue(KEY, SECRET, "test")
    keys = pii.PiiKeys.from_secret(secret)
    forms = _key_forms()
    texts = [repr(secret), str(secret), f"{secret}", repr(keys), str(keys), f"{keys}", repr([secret, keys])]
    texts += [repr(pickle.loads(pickle.dumps(secret))), repr(pickle.loads(pickle.dumps(keys)))]
    for text in texts:
        assert not any(form in text for form in forms), text
    # what travels to Spark workers holds the derived sub-keys only, never the data key itself
    pickled = pickle.dumps(keys)
    assert base64.b64decode(KEY) not in pickled and KEY.encode() not in pickled
    assert pickle.loads(pickled).__reduce__() == keys.__reduce__()


def test_generated_keys_are_valid_and_distinct() -> None:
    first, second = pii.generate_key(), pii.generate_key()
    assert first != second and len(base64.b64decode(first, validate=True)) == 32
    pii.PiiKeys.from_secret(SecretValue(first, SECRET, "test"))


# --- Spark ----------------------------------------------------------------------------------------------


@pytest.fixture
def customers(spark: Any) -> Any:
    return spark.createDataFrame(ROWS, SCHEMA)


def test_protect_in_spark_matches_python_and_round_trips(customers: Any) -> None:
    protected = pii.protect(customers, "customers", CUSTOMERS_PII)
    assert protected.columns == [
        "Customer_ID", "Customer_Name", "Email", "Email_hash", "Date_Of_Birth", "City"
    ]  # fmt: skip
    types = dict(protected.dtypes)
    assert all(types[c] == "string" for c in ("Customer_Name", "Email", "Email_hash", "Date_Of_Birth"))
    assert "PII" in protected.schema["Email"].metadata["comment"]
    got = {r.Customer_ID: r for r in protected.collect()}
    for cid, name, email, dob, _city in ROWS:
        row = got[cid]
        assert row.Customer_Name == pii.encrypt_value("customers", "Customer_Name", name)
        assert row.Email == pii.encrypt_value("customers", "Email", email)
        assert row.Email_hash == pii.hash_value("Email", email)
        assert row.Date_Of_Birth == pii.encrypt_value("customers", "Date_Of_Birth", dob and dob.isoformat())
    assert got[1].Email_hash == got[5].Email_hash  # normalized: trimmed, lower-cased
    assert got[1].Email != got[5].Email  # the ciphertext keeps the exact value
    assert got[1].Customer_Name == got[5].Customer_Name  # deterministic across rows

    decrypted = protected
    for column in CUSTOMERS_PII:
        decrypted = pii.decrypt_column(decrypted, "customers", column)
    back = {r.Customer_ID: r for r in decrypted.collect()}
    for cid, name, email, dob, city in ROWS:
        assert (back[cid].Customer_Name, back[cid].Email, back[cid].City) == (name, email, city)
        assert back[cid].Date_Of_Birth == (dob.isoformat() if dob else None)  # dates come back as strings


def test_protect_is_deterministic_between_updates(customers: Any) -> None:
    first = sorted(pii.protect(customers, "customers", CUSTOMERS_PII).collect())
    again = sorted(pii.protect(customers.repartition(2), "customers", CUSTOMERS_PII).collect())
    assert first == again


def test_decrypt_column_refuses_values_of_another_column(customers: Any) -> None:
    protected = pii.protect(customers, "customers", CUSTOMERS_PII).where("Customer_ID = 1")
    swapped = protected.withColumn("Customer_Name", protected["Email"])
    with pytest.raises(Exception, match=r"does not decrypt as customers\.customer_name") as err:
        pii.decrypt_column(swapped, "customers", "Customer_Name").collect()
    assert CANARY_EMAIL not in str(err.value) and CANARY_NAME not in str(err.value)


def test_protect_fails_closed_before_running(customers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PiiProtectionError, match=r"customers\.Phone .*not in the data"):
        pii.protect(customers, "customers", {**CUSTOMERS_PII, "Phone": "encrypt"})
    with pytest.raises(PiiProtectionError, match="Email_hash"):
        pii.protect(customers.withColumn("email_hash", customers["City"]), "customers", CUSTOMERS_PII)
    with pytest.raises(PiiProtectionError, match="binary"):
        pii.protect(
            customers.withColumn("City", customers["City"].cast("binary")), "customers", {"City": "encrypt"}
        )
    monkeypatch.delenv(env_var_for(SECRET))
    pii.reset_keys()
    with pytest.raises(PiiProtectionError, match=SECRET):
        pii.protect(customers, "customers", CUSTOMERS_PII)


def test_key_never_in_plans_or_analysis_errors(customers: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from pyspark.errors import AnalysisException

    protected = pii.protect(customers, "customers", CUSTOMERS_PII)
    decrypted = pii.decrypt_column(protected, "customers", "Email")
    capsys.readouterr()
    texts = []
    for df in (protected, decrypted):
        df.explain(True)
        texts += [capsys.readouterr().out, str(df._jdf.queryExecution())]
    with pytest.raises(AnalysisException) as err:
        decrypted.select("no_such_column").collect()
    texts.append(str(err.value))
    assert "pii_encrypt" in texts[0] and "pii_hash" in texts[0] and "pii_decrypt" in texts[2]
    for text in texts:
        assert not any(form in text for form in _key_forms())


def _scan(folder: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """needle name -> the files (data, _delta_log JSON, checksums, ...) whose bytes contain it."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for name, needle in needles.items():
            if needle in data:
                found.setdefault(name, []).append(str(path.relative_to(folder)))
    return found


def test_no_plaintext_pii_or_key_in_delta_files(spark: Any, customers: Any, tmp_path: Path) -> None:
    needles = {
        "email": CANARY_EMAIL.encode(),
        "email_lower": CANARY_EMAIL.lower().encode(),
        "name": CANARY_NAME.encode(),
        "dob": CANARY_DOB.isoformat().encode(),
        **{f"key{i}": form.encode() for i, form in enumerate(_key_forms())},
    }
    codec = "spark.sql.parquet.compression.codec"
    previous = spark.conf.get(codec)
    spark.conf.set(codec, "uncompressed")  # so that a plaintext value would be visible in the bytes
    table = tmp_path / "bz_customers"
    try:
        pii.protect(customers, "customers", CUSTOMERS_PII).coalesce(1).write.format("delta").save(str(table))
    finally:
        spark.conf.set(codec, previous)
    # control: the scan does see stored strings (the canary's ciphertext), so it would see its plaintext
    visible = {"ciphertext": str(pii.encrypt_value("customers", "Customer_Name", CANARY_NAME)).encode()}
    assert "ciphertext" in _scan(table, visible), "the scan cannot see stored values: the test is blind"
    assert _scan(table, needles) == {}
    log = "".join(p.read_text() for p in sorted((table / "_delta_log").glob("*.json")))
    assert "minValues" in log  # stats are collected (on ciphertext and hash only)
    stored = spark.read.format("delta").load(str(table))
    assert dict(stored.dtypes)["Date_Of_Birth"] == "string"
    back = pii.decrypt_column(stored, "customers", "Email").where("Customer_ID = 1").first()
    assert back is not None and back.Email == f"  {CANARY_EMAIL} "


# --- CLI ------------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    from inventory_bronze.cli import pii as pii_cli

    parser = argparse.ArgumentParser(prog="inventory-bronze")
    pii_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def test_cli_decrypt_hash_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    ciphertext = pii.encrypt_value("customers", "Email", CANARY_EMAIL)
    assert ciphertext is not None
    assert (
        _cli(["pii", "decrypt", "--table", "bz_customers", "--column", "email", "--value", ciphertext]) == 0
    )
    assert capsys.readouterr().out == CANARY_EMAIL + "\n"
    assert _cli(["pii", "hash", "--table", "customers", "--column", "Email", "--value", CANARY_EMAIL]) == 0
    assert capsys.readouterr().out.strip() == pii.hash_value("Email", CANARY_EMAIL)
    assert _cli(["pii", "decrypt", "--table", "customers", "--column", "Phone", "--value", ciphertext]) == 1
    captured = capsys.readouterr()
    assert (
        "does not decrypt as customers.phone" in captured.err
        and CANARY_EMAIL not in captured.err + captured.out
    )
    assert _cli(["pii", "decrypt", "--table", "customers", "--column", "City", "--value", ciphertext]) == 1
    assert "not a PII column of customers" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        _cli(["pii", "decrypt", "--help"])
    assert done.value.code == 0 and "--table" in capsys.readouterr().out


def test_cli_fingerprint(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _cli(["pii", "fingerprint"]) == 0
    shown = capsys.readouterr().out.strip()
    assert shown == pii.load_keys().fingerprint and not any(form in shown for form in _key_forms())
    monkeypatch.delenv(env_var_for(SECRET))
    pii.reset_keys()
    assert _cli(["pii", "fingerprint"]) == 1
    assert "KPiiEncryptionKey" in capsys.readouterr().err


def test_cli_keygen(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli(["pii", "keygen"]) == 0
    assert len(base64.b64decode(capsys.readouterr().out.strip(), validate=True)) == 32
    local = tmp_path / "secrets" / "local.json"
    local.parent.mkdir()
    local.write_text(json.dumps({"KUser": "u"}))
    monkeypatch.setenv("INVENTORY_BRONZE_SECRETS_FILE", str(local))
    assert _cli(["pii", "keygen", "--write-local"]) == 0
    stored = json.loads(local.read_text())
    assert stored["KUser"] == "u" and len(base64.b64decode(stored[SECRET])) == 32
    assert local.stat().st_mode & 0o777 == 0o600
    assert _cli(["pii", "keygen", "--write-local"]) == 0  # keeps the existing key
    assert json.loads(local.read_text())[SECRET] == stored[SECRET]
    assert stored[SECRET] not in capsys.readouterr().err
