"""`inventory-bronze pii decrypt | hash | fingerprint | rotate | keygen`: the authorized decrypt path for
PII columns, the join hash of a value (for look-ups), the current key's fingerprint, key rotation, and a
new data key. See docs/pii.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from inventory_bronze.cli import options
from inventory_bronze.cli.options import storage_folder

DEFAULT_STORAGE = options.local_storage()

_EPILOG = (
    "The key is read through the secrets chain (see `inventory-bronze secrets providers`) under the name "
    "KPiiEncryptionKey, or --secret / $INVENTORY_BRONZE_PII_KEY_SECRET. Locally: "
    "export INVENTORY_BRONZE_SECRET_KPIIENCRYPTIONKEY=<key>, or `pii keygen --write-local`. "
    "Scheme, rotation and the notebook path (decrypt_column): docs/pii.md."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pii",
        help="decrypt a PII value (authorized users), hash a value for look-ups, generate the PII key",
        description="PII protection of the bronze tables: AES-256-GCM (deterministic) ciphertext per PII "
        "column, <column>_hash for joins and look-ups.",
        epilog=_EPILOG,
    )
    pii_sub = parser.add_subparsers(dest="pii_command", metavar="SUBCOMMAND")

    decrypt = pii_sub.add_parser(
        "decrypt",
        help="print the plaintext of a PII ciphertext (needs read access to the key)",
        description="Decrypt values of one PII column. The table and column must be the ones the value was "
        "written for (they are bound into the ciphertext): a value of another column, under another key, or "
        "altered fails (exit status 1). Prints one plaintext per value, in order.",
        epilog=_EPILOG,
    )
    _table_column(decrypt)
    decrypt.add_argument(
        "--value",
        required=True,
        action="append",
        metavar="CIPHERTEXT",
        help="the stored value (repeatable); '-' reads one value per line from standard input",
    )

    hash_ = pii_sub.add_parser(
        "hash",
        help="print the join hash of a value, to look a row up by <column>_hash",
        description="Print hex HMAC-SHA256 of the normalized value (trimmed; e-mails also lower-cased), as "
        "stored in <column>_hash. Example: WHERE Email_hash = '<output>'.",
        epilog=_EPILOG,
    )
    _table_column(hash_)
    hash_.add_argument(
        "--value",
        required=True,
        action="append",
        metavar="VALUE",
        help="the plaintext (repeatable); '-' reads one value per line from standard input (keeps PII out of "
        "shell history)",
    )

    keygen = pii_sub.add_parser(
        "keygen",
        help="generate a new 256-bit data key (base64) for the secret KPiiEncryptionKey",
        description="Print a new random 256-bit key, base64, to standard output. Store it once as the Key "
        "Vault secret KPiiEncryptionKey, e.g. `inventory-bronze pii keygen | az keyvault secret set "
        "--vault-name <vault> --name KPiiEncryptionKey --file /dev/stdin`. Replacing an existing key makes "
        "the data written under it unreadable unless the old key is kept: see docs/pii.md, rotation.",
        epilog=_EPILOG,
    )
    keygen.add_argument(
        "--write-local",
        action="store_true",
        help="instead of printing it, add the key to the local secrets file (INVENTORY_BRONZE_SECRETS_FILE, "
        "default var/secrets/local.json; mode 600) for local runs",
    )
    keygen.add_argument(
        "--force", action="store_true", help="with --write-local: replace a key that is already there"
    )
    keygen.add_argument("--secret", metavar="NAME", help="secret name (default KPiiEncryptionKey)")

    fingerprint = pii_sub.add_parser(
        "fingerprint",
        help="print the fingerprint of the current PII key (what the tables record; never the key)",
        description="Print the fingerprint of the PII data key the secrets chain gives now: 16 hex digits "
        "derived from the key, which name it without revealing it. Every table holding PII records the "
        "fingerprint of the key that wrote it (table property inventory.pii.key_fingerprint); an update "
        "under another key is refused before it writes, naming both fingerprints.",
        epilog=_EPILOG,
    )
    fingerprint.add_argument("--secret", metavar="NAME", help="secret name (default KPiiEncryptionKey)")

    rotate = pii_sub.add_parser(
        "rotate",
        help="re-encrypt and re-hash every PII table (local storage or catalog) under the new key (resumable)",
        description="Rotate the PII key over the pipelines' storage: every dataset holding PII (bronze table, "
        "quarantine, change archive) that recorded the old key is rewritten in one commit per table, its PII "
        "columns decrypted with the old key and protected with the new one, then records the new key's "
        "fingerprint. Streams reading the tables do not take the rows again. Interrupted, run it again: done "
        "tables are skipped. Run it while no update runs. Put the old key under a second secret name first "
        "and the new one under KPiiEncryptionKey (docs/pii.md, rotation). On Databricks, --catalog and "
        "--schema name where the pipelines publish (stop them first).",
        epilog=_EPILOG,
    )
    rotate.add_argument(
        "--storage",
        type=storage_folder,
        default=DEFAULT_STORAGE,
        help=f"the pipelines' storage, as given to `run` (default {DEFAULT_STORAGE})",
    )
    rotate.add_argument(
        "--catalog", help="catalog the pipelines publish to (with --schema), instead of --storage"
    )
    rotate.add_argument("--schema", help="schema the pipelines publish to (with --catalog)")
    rotate.add_argument(
        "--from-secret",
        required=True,
        metavar="NAME",
        help="secret holding the old key, e.g. KPiiEncryptionKeyPrevious",
    )
    rotate.add_argument(
        "--secret", metavar="NAME", help="secret holding the new key (default KPiiEncryptionKey)"
    )
    rotate.add_argument("--config", metavar="PATH", help="the tables configuration (default conf/tables.yml)")

    decrypt.set_defaults(handler=_decrypt)
    rotate.set_defaults(handler=_rotate)
    fingerprint.set_defaults(handler=_fingerprint)
    hash_.set_defaults(handler=_hash)
    keygen.set_defaults(handler=_keygen)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def _table_column(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table",
        required=True,
        metavar="T",
        help="the bronze table, as in conf/tables.yml (customers or bz_customers)",
    )
    parser.add_argument("--column", required=True, metavar="C", help="the PII column, e.g. Email")
    parser.add_argument("--secret", metavar="NAME", help="secret holding the key (default KPiiEncryptionKey)")
    parser.add_argument("--config", metavar="PATH", help="the tables configuration (default conf/tables.yml)")


def _values(given: list[str]) -> Iterator[str]:
    for value in given:
        if value == "-":
            for line in sys.stdin:
                line = line.rstrip("\r\n")
                if line:
                    yield line
        else:
            yield value


def _resolve(args: argparse.Namespace) -> tuple[str, str]:
    """The configured table and PII column the arguments name (case-insensitive, `bz_` prefix allowed)."""
    from inventory_bronze import config
    from inventory_bronze.errors import PiiProtectionError

    cfg = config.load(options.config_path(args.config), check_source=False)
    tables = {name.lower(): name for name in cfg.tables}
    wanted = args.table.lower()
    table = tables.get(wanted) or (tables.get(wanted[3:]) if wanted.startswith("bz_") else None)
    if table is None:
        raise PiiProtectionError(
            f"No table '{args.table}' in the configuration; tables: {', '.join(cfg.tables)}."
        )
    columns = {name.lower(): name for name in cfg.tables[table].pii}
    column = columns.get(args.column.lower())
    if column is None:
        listed = ", ".join(cfg.tables[table].pii) or "none"
        raise PiiProtectionError(f"'{args.column}' is not a PII column of {table} (PII columns: {listed}).")
    return table, column


def _run(args: argparse.Namespace, hash_only: bool) -> int:
    from inventory_bronze import pii
    from inventory_bronze.errors import InventoryBronzeError

    try:
        table, column = _resolve(args)
        keys = pii.load_keys(args.secret)
        for value in _values(args.value):
            if hash_only:
                print(pii.hash_value(column, value, keys=keys))
            else:
                print(pii.decrypt_value(table, column, value, keys=keys))
    except InventoryBronzeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _decrypt(args: argparse.Namespace) -> int:
    return _run(args, hash_only=False)


def _hash(args: argparse.Namespace) -> int:
    return _run(args, hash_only=True)


def _fingerprint(args: argparse.Namespace) -> int:
    from inventory_bronze import pii
    from inventory_bronze.errors import InventoryBronzeError

    try:
        print(pii.load_keys(args.secret).fingerprint)
    except InventoryBronzeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from inventory_bronze import config, pii
    from inventory_bronze.errors import ConfigError
    from inventory_bronze.pii_rotation import catalog_datasets, local_datasets, rotate
    from inventory_bronze.spark_session import get_spark

    if bool(args.catalog) != bool(args.schema):
        raise ConfigError("--catalog and --schema go together (where the pipelines publish)")
    old, new = pii.load_keys(args.from_secret), pii.load_keys(args.secret)
    cfg = config.load(options.config_path(args.config), check_source=False)
    spark = get_spark("inventory-bronze")
    if args.catalog:
        datasets = catalog_datasets(spark, f"{args.catalog}.{args.schema}", cfg)
    else:
        datasets = local_datasets(args.storage, cfg)
    done = rotate(spark, datasets, cfg, old, new, progress=lambda line: print(line, flush=True))
    rows = sum(r.rows for r in done)
    print(f"{len(done)} table(s) under key {new.fingerprint} now; {rows:,} rows re-encrypted")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from inventory_bronze import pii
    from inventory_bronze.secrets import default_secrets_file

    name = args.secret or pii.DEFAULT_KEY_SECRET
    key = pii.generate_key()
    if not args.write_local:
        print(key)
        return 0
    path = default_secrets_file()
    data: dict[str, object] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"error: {path} is unreadable ({type(err).__name__}): fix or remove it.", file=sys.stderr)
            return 1
        if not isinstance(loaded, dict):
            print(f"error: {path} must hold a JSON object of secret name -> value.", file=sys.stderr)
            return 1
        data = loaded
    if name in data and not args.force:
        print(
            f"{path} already holds '{name}'; kept it (data encrypted under it stays readable). "
            f"Use --force to replace it.",
            file=sys.stderr,
        )
        return 0
    data[name] = key
    _write_private(path, json.dumps(data, indent=2) + "\n")
    print(f"wrote a new '{name}' to {path}", file=sys.stderr)
    return 0


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
