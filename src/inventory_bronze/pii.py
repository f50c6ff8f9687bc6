"""PII protection for the bronze tables: deterministic AES-256-GCM encryption and a keyed join hash.

Every column flagged PII in `conf/tables.yml` (`pii: {Column: encrypt | encrypt_and_hash}`) is replaced,
before it is written to Delta, by its ciphertext; `encrypt_and_hash` also adds `<Column>_hash`, a keyed
hash for joins and look-ups. Plaintext is never written, and a missing or malformed key fails the update
(`PiiProtectionError`): there is no plaintext fallback.

Keys
    One 256-bit data key, base64, from the secrets chain (`inventory_bronze.secrets`) under the name
    `KPiiEncryptionKey` (or `$INVENTORY_BRONZE_PII_KEY_SECRET`, or the pipeline setting
    `inventory.secret.pii_key`; on Databricks from the pipeline's Key Vault-backed scope, setting
    `inventory.secret_scope`), read once per process. HKDF-SHA256 derives three independent sub-keys,
    each bound to a purpose label: the AES-256-GCM key, the nonce key and the join-hash key. The data key
    itself never leaves the driver; only the sub-keys travel to the Spark workers, pickled inside the
    pandas UDFs' closures, so no key is ever a literal of a Spark plan, an EXPLAIN output or an error.

Ciphertext (format v1)
    nonce = HMAC-SHA256(nonce_key, "table.column" || 0x00 || plaintext)[:12]
    aad   = "table.column"    (lower-case: Spark and PostgreSQL names are case-insensitive)
    value = base64url_nopad("v1" || nonce || AES-256-GCM(enc_key, nonce, plaintext, aad) || tag)

Why a deterministic nonce is safe here
    AES-GCM breaks when one nonce encrypts two *different* plaintexts under one key. Here the nonce is a
    PRF (HMAC) of the column and the plaintext, so two encryptions share a nonce only when they encrypt
    the same plaintext for the same column, and then they produce the same ciphertext: nothing beyond
    equality is revealed (a 96-bit collision between different plaintexts is a birthday event, negligible
    for far more than the rows a table will ever hold). This is the synthetic-IV (SIV) idea: the nonce is
    derived from the message with a key of its own. Determinism is what the pipeline needs: an unchanged
    value gives the same ciphertext in every update, so snapshot comparison does not see every row as
    changed. Decryption recomputes the nonce from the plaintext and compares it (as SIV does).

What it reveals
    Equality: rows with the same value in the same column have the same ciphertext, the same thing the
    join hash reveals on purpose (and the hash, unlike the ciphertext, is the same across tables and
    columns, so it can join customers' `Email` with suppliers' `Contact_Email`). It also reveals the
    length of the value (to the byte). It does not reveal the value, and a ciphertext only decrypts for its
    own table and column (the AAD), so a value moved to another column, or altered, fails to decrypt.

Join hash
    `<col>_hash` = hex HMAC-SHA256(hash_key, normalize(value)); normalization trims the value and, for
    e-mail columns (name containing "email"), lower-cases it. Without the key the hash cannot be computed,
    so it cannot be reversed by hashing guesses.

Types
    PII columns of other types (the customers' `Date_Of_Birth` is a `date`) are cast to string first (Spark's
    cast: `yyyy-MM-dd` for dates; timestamps in the session time zone, UTC in this project) and come back
    from `decrypt_column` as strings: cast them back (`to_date(...)`) where a date is needed. Binary and
    nested types are refused.

Long because: encryption, keyed hashing and key loading of one ciphertext format, kept together so the
format is defined in one place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets as _random
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd  # at run time: pandas_udf reads the UDFs' type hints
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from inventory_bronze.config import PiiTreatment, TableConfig
from inventory_bronze.errors import PiiProtectionError
from inventory_bronze.secrets import SecretError, SecretValue, default_chain, get_secret

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DEFAULT_KEY_SECRET = "KPiiEncryptionKey"
ENV_KEY_SECRET = "INVENTORY_BRONZE_PII_KEY_SECRET"
PIPELINE_CONF_KEY = "inventory.secret.pii_key"
PIPELINE_SCOPE_CONF_KEY = "inventory.secret_scope"
VERSION = b"v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HASH_SUFFIX = "_hash"

_HKDF_SALT = b"inventory-bronze/pii"  # public: separates this use of the key from any other
_PURPOSE_ENCRYPT = b"v1/aes-256-gcm/data-key"
_PURPOSE_NONCE = b"v1/gcm-nonce/hmac-sha256"
_PURPOSE_HASH = b"v1/join-hash/hmac-sha256"
_PURPOSE_FINGERPRINT = b"v1/key-fingerprint"
FINGERPRINT_HEX = 16  # 64 bits: tells keys apart, nothing more
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MIN_CIPHERTEXT = len(VERSION) + NONCE_BYTES + TAG_BYTES
_KEYGEN_HINT = "generate one with `inventory-bronze pii keygen` (see docs/pii.md)"


# --- keys -----------------------------------------------------------------------------------------------


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=purpose).derive(key)


class PiiKeys:
    """The three sub-keys derived from the data key. Never prints them; pickles (for Spark workers)."""

    __slots__ = ("_encrypt", "_nonce", "_hash", "secret_name", "fingerprint")

    def __init__(
        self, encrypt: bytes, nonce: bytes, hash_: bytes, secret_name: str, fingerprint: str = ""
    ) -> None:
        self._encrypt = encrypt
        self._nonce = nonce
        self._hash = hash_
        self.secret_name = secret_name
        #: names the data key without revealing it (a sub-key of its own, hashed): recorded on every table
        #: the key protects, so that a run under another key is refused before it writes
        self.fingerprint = fingerprint

    @classmethod
    def from_key(cls, key: bytes, secret_name: str = "<key>") -> PiiKeys:
        """Derive the sub-keys from a raw 32-byte data key."""
        if len(key) != KEY_BYTES:
            raise PiiProtectionError(
                f"The PII key from secret '{secret_name}' is {len(key)} bytes, not {KEY_BYTES}: {_KEYGEN_HINT}."
            )
        return cls(
            _derive(key, _PURPOSE_ENCRYPT),
            _derive(key, _PURPOSE_NONCE),
            _derive(key, _PURPOSE_HASH),
            secret_name,
            hashlib.sha256(_derive(key, _PURPOSE_FINGERPRINT)).hexdigest()[:FINGERPRINT_HEX],
        )

    @classmethod
    def from_secret(cls, secret: SecretValue) -> PiiKeys:
        """Derive the sub-keys from the secret's value: base64 (standard or URL-safe) of 32 bytes."""
        return cls.from_key(parse_key(secret), secret.name)

    def __repr__(self) -> str:
        return f"PiiKeys(secret_name={self.secret_name!r}, fingerprint={self.fingerprint!r}, keys='***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:  # picklable into UDF closures, still redacted when printed
        return (PiiKeys, (self._encrypt, self._nonce, self._hash, self.secret_name, self.fingerprint))


def parse_key(secret: SecretValue) -> bytes:
    """The 32 key bytes of a base64 secret; a malformed value raises PiiProtectionError naming the secret."""
    text = secret.reveal().strip()
    padded = text + "=" * (-len(text) % 4)
    raw: bytes | None = None
    try:
        if re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", padded):
            raw = base64.b64decode(padded, validate=True)
        elif re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", padded):
            raw = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != KEY_BYTES:
        raise PiiProtectionError(
            f"Secret '{secret.name}' (from {secret.provider}) is not a base64-encoded 256-bit key: "
            f"replace its value; {_KEYGEN_HINT}. (Changing the key makes existing ciphertext undecryptable "
            f"unless the old key is kept for decryption: see docs/pii.md, rotation.)"
        )
    return raw


def generate_key() -> str:
    """A new random 256-bit data key, base64 (standard alphabet), for `KPiiEncryptionKey`."""
    return base64.b64encode(_random.token_bytes(KEY_BYTES)).decode("ascii")


def _pipeline_setting(key: str) -> str | None:
    """A setting of the running pipeline (the active Spark session's conf), if there is one."""
    try:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        return active.conf.get(key, None) if active is not None else None
    except Exception:  # no Spark here, or a conf API that refuses the key: no setting
        return None


def key_secret_name(name: str | None = None) -> str:
    """Which secret holds the data key: `name`, else $INVENTORY_BRONZE_PII_KEY_SECRET, else the active
    Spark session's `inventory.secret.pii_key` (the bundle's pipeline setting), else KPiiEncryptionKey."""
    return (
        name or os.environ.get(ENV_KEY_SECRET) or _pipeline_setting(PIPELINE_CONF_KEY) or DEFAULT_KEY_SECRET
    )


_cache: dict[str, PiiKeys] = {}
_cache_lock = threading.Lock()


def load_keys(secret_name: str | None = None) -> PiiKeys:
    """The PII sub-keys, from the secrets chain once per process (per secret name). Fails closed: a missing,
    unreadable or malformed key raises PiiProtectionError naming the secret, never showing a value."""
    name = key_secret_name(secret_name)
    with _cache_lock:
        keys = _cache.get(name)
        if keys is None:
            try:
                # on Databricks, the pipeline's Key Vault-backed scope (bundle setting inventory.secret_scope)
                scope = _pipeline_setting(PIPELINE_SCOPE_CONF_KEY)
                secret = get_secret(name, default_chain(scope=scope) if scope else None)
            except SecretError as err:  # its message names the secret and the providers, never a value
                raise PiiProtectionError(
                    f"The PII encryption key (secret '{name}') is not available, so PII cannot be protected "
                    f"and nothing is written: {err} Create the key once ({_KEYGEN_HINT}) and keep it: "
                    f"data encrypted under it can only be read with it."
                ) from None
            keys = _cache[name] = PiiKeys.from_secret(secret)
        return keys


def reset_keys() -> None:
    """Forget the keys read so far (tests; after rotating the key in a long-lived process)."""
    with _cache_lock:
        _cache.clear()


# --- values (pure Python) -------------------------------------------------------------------------------


def _check_identifier(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise PiiProtectionError(
            f"PII {kind} name {name!r} is not an identifier (letters, digits, '_'): "
            f"use the name from conf/tables.yml."
        )


def _aad(table: str, column: str) -> bytes:
    _check_identifier("table", table)
    _check_identifier("column", column)
    return f"{table.lower()}.{column.lower()}".encode("ascii")


def _sealer(encrypt_key: bytes, nonce_key: bytes, aad: bytes) -> Callable[[str], str]:
    """The v1 encryption of one value of a column: the nonce is an HMAC of the column's AAD and the value
    (deterministic, so equal values encrypt equally). The keyed HMAC and the cipher are set up once and
    copied per value (a batch of values costs about 45% less CPU than setting them up per value)."""
    encrypt = AESGCM(encrypt_key).encrypt
    keyed = hmac.new(nonce_key, aad + b"\x00", hashlib.sha256)
    encode = base64.urlsafe_b64encode

    def seal(plaintext: str) -> str:
        data = plaintext.encode("utf-8")
        mac = keyed.copy()
        mac.update(data)
        nonce = mac.digest()[:NONCE_BYTES]
        return encode(VERSION + nonce + encrypt(nonce, data, aad)).rstrip(b"=").decode("ascii")

    return seal


def _open(aead: AESGCM, nonce_key: bytes, aad: bytes, ciphertext: str) -> str:
    where = aad.decode("ascii")
    try:
        text = ciphertext.strip()
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError, AttributeError):
        raw = b""
    if len(raw) < _MIN_CIPHERTEXT or not raw.startswith(VERSION):
        raise PiiProtectionError(
            f"The value given for {where} is not a PII ciphertext (format {VERSION.decode()}: base64url of "
            f"'v1' + nonce + ciphertext + tag): pass the column's stored value unchanged."
        )
    nonce, sealed = raw[len(VERSION) : len(VERSION) + NONCE_BYTES], raw[len(VERSION) + NONCE_BYTES :]
    try:
        data = aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise PiiProtectionError(
            f"The value does not decrypt as {where}: it was encrypted for another table or column, under "
            f"another key, or it was altered. Check --table/--column and that the key is the one the data "
            f"was written with."
        ) from None
    expected = hmac.new(nonce_key, aad + b"\x00" + data, hashlib.sha256).digest()[:NONCE_BYTES]
    if not hmac.compare_digest(nonce, expected):
        raise PiiProtectionError(
            f"The value for {where} decrypts but its nonce is not the one this scheme derives: it was not "
            f"written by inventory_bronze.pii (v1) with this key."
        )
    return data.decode("utf-8")


def encrypt_value(
    table: str, column: str, plaintext: str | None, *, keys: PiiKeys | None = None
) -> str | None:
    """The v1 ciphertext of one value of `table.column`; None stays None."""
    if plaintext is None:
        return None
    k = keys or load_keys()
    return _sealer(k._encrypt, k._nonce, _aad(table, column))(str(plaintext))


def decrypt_value(
    table: str, column: str, ciphertext: str | None, *, keys: PiiKeys | None = None
) -> str | None:
    """The plaintext of one ciphertext of `table.column`; None stays None. A value of another column, under
    another key, or altered raises PiiProtectionError."""
    if ciphertext is None:
        return None
    k = keys or load_keys()
    return _open(AESGCM(k._encrypt), k._nonce, _aad(table, column), ciphertext)


def is_email_column(column: str) -> bool:
    return "email" in column.lower()


def normalize(column: str, value: str) -> str:
    """What the join hash hashes: the value trimmed, and lower-cased for e-mail columns."""
    value = value.strip()
    return value.lower() if is_email_column(column) else value


def _digester(hash_key: bytes, column: str) -> Callable[[str], str]:
    """The join hash of one value of a column: HMAC-SHA256 of `normalize(column, value)`, keyed once."""
    keyed = hmac.new(hash_key, digestmod=hashlib.sha256)

    def digest(value: str) -> str:
        mac = keyed.copy()
        mac.update(normalize(column, value).encode("utf-8"))
        return mac.hexdigest()

    return digest


def hash_value(column: str, value: str | None, *, keys: PiiKeys | None = None) -> str | None:
    """The join hash of one value (hex HMAC-SHA256 of the normalized value); None stays None. The same
    across tables and columns (so e-mails join), given the column's kind of normalization."""
    if value is None:
        return None
    return _digester((keys or load_keys())._hash, column)(str(value))


def hash_column_name(column: str) -> str:
    return column + HASH_SUFFIX


# --- DataFrames (pandas UDFs: the keys travel in the UDF closure, never in the plan) --------------------


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# The UDF bodies are module functions: cloudpickle ships them by reference (workers import this module),
# and only the sub-keys and the column's context travel, by value, in the closures below.


def _encrypt_series(values: pd.Series, encrypt_key: bytes, nonce_key: bytes, aad: bytes) -> pd.Series:
    seal = _sealer(encrypt_key, nonce_key, aad)
    return pd.Series(
        [None if _is_missing(v) else seal(v) for v in values.tolist()], index=values.index, dtype=object
    )


def _hash_series(values: pd.Series, hash_key: bytes, column: str) -> pd.Series:
    digest = _digester(hash_key, column)
    return pd.Series(
        [None if _is_missing(v) else digest(v) for v in values.tolist()], index=values.index, dtype=object
    )


def _decrypt_series(values: pd.Series, encrypt_key: bytes, nonce_key: bytes, aad: bytes) -> pd.Series:
    aead = AESGCM(encrypt_key)
    return values.map(lambda v: None if _is_missing(v) else _open(aead, nonce_key, aad, v))


def _encrypt_udf(keys: PiiKeys, table: str, column: str) -> Any:
    from pyspark.sql.functions import pandas_udf

    encrypt_key, nonce_key, aad = keys._encrypt, keys._nonce, _aad(table, column)

    def pii_encrypt(values: pd.Series) -> pd.Series:
        return _encrypt_series(values, encrypt_key, nonce_key, aad)

    return pandas_udf(pii_encrypt, "string")  # type: ignore[call-overload]


def _hash_udf(keys: PiiKeys, column: str) -> Any:
    from pyspark.sql.functions import pandas_udf

    hash_key = keys._hash

    def pii_hash(values: pd.Series) -> pd.Series:
        return _hash_series(values, hash_key, column)

    return pandas_udf(pii_hash, "string")  # type: ignore[call-overload]


def _decrypt_udf(keys: PiiKeys, table: str, column: str) -> Any:
    from pyspark.sql.functions import pandas_udf

    encrypt_key, nonce_key, aad = keys._encrypt, keys._nonce, _aad(table, column)

    def pii_decrypt(values: pd.Series) -> pd.Series:
        return _decrypt_series(values, encrypt_key, nonce_key, aad)

    return pandas_udf(pii_decrypt, "string")  # type: ignore[call-overload]


def _as_string(df: DataFrame, table: str, name: str) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    data_type = df.schema[name].dataType
    if isinstance(data_type, T.StringType):
        return F.col(name)
    if isinstance(data_type, (T.BinaryType, T.ArrayType, T.MapType, T.StructType, T.VariantType)):
        raise PiiProtectionError(
            f"PII column {table}.{name} has type {data_type.simpleString()}, which cannot be encrypted as "
            f"text: cast or flatten it to a string column before protecting it."
        )
    return F.col(name).cast("string")


def _treatments(pii: Mapping[str, PiiTreatment | str] | TableConfig) -> dict[str, PiiTreatment]:
    items = pii.pii if isinstance(pii, TableConfig) else pii
    try:
        return {column: PiiTreatment(treatment) for column, treatment in items.items()}
    except ValueError:
        raise PiiProtectionError(
            f"Unknown PII treatment in {sorted(items)}: use one of {[t.value for t in PiiTreatment]}."
        ) from None


def protect(
    df: DataFrame,
    table: str,
    pii: Mapping[str, PiiTreatment | str] | TableConfig,
    *,
    keys: PiiKeys | None = None,
) -> DataFrame:
    """`df` with each PII column replaced by its ciphertext (same name and position) and, for
    `encrypt_and_hash`, `<col>_hash` right after it. Column names match case-insensitively. Fails closed:
    no key, a configured PII column missing from `df` (schema drift could carry it under another name), an
    existing `<col>_hash`, or an unsupported type raise PiiProtectionError before anything runs."""
    treatments = _treatments(pii)
    if not treatments:
        return df
    _check_identifier("table", table)
    by_lower = {c.lower(): c for c in df.columns}
    wanted: dict[str, PiiTreatment] = {}
    for column, treatment in treatments.items():
        actual = by_lower.get(column.lower())
        if actual is None:
            raise PiiProtectionError(
                f"PII column {table}.{column} (conf/tables.yml) is not in the data (columns: "
                f"{', '.join(df.columns)}): fix the configuration or the source query; nothing is written "
                f"unprotected."
            )
        if treatment is PiiTreatment.encrypt_and_hash and hash_column_name(actual).lower() in by_lower:
            raise PiiProtectionError(
                f"{table} already has a column {hash_column_name(actual)}: rename it, the join hash of "
                f"{column} needs that name."
            )
        wanted[actual] = treatment
    k = keys or load_keys()
    selected: list[Any] = []
    for name in df.columns:
        treatment = wanted.get(name)
        if treatment is None:
            selected.append(df[name])
            continue
        text = _as_string(df, table, name)
        note = f"PII, AES-256-GCM ciphertext (v1) of {table}.{name}; decrypt: inventory-bronze pii decrypt"
        selected.append(_encrypt_udf(k, table, name)(text).alias(name, metadata={"comment": note}))
        if treatment is PiiTreatment.encrypt_and_hash:
            hash_note = f"PII join hash (HMAC-SHA256, normalized) of {table}.{name}"
            selected.append(
                _hash_udf(k, name)(text).alias(hash_column_name(name), metadata={"comment": hash_note})
            )
    return df.select(*selected)


def decrypt_column(
    df: DataFrame, table: str, column: str, *, keys: PiiKeys | None = None, alias: str | None = None
) -> DataFrame:
    """For authorized users: `df` with `column`'s ciphertext replaced by its plaintext (a string; cast dates
    back with to_date), or added as `alias`. A value that is not this column's ciphertext fails the query."""
    by_lower = {c.lower(): c for c in df.columns}
    actual = by_lower.get(column.lower())
    if actual is None:
        raise PiiProtectionError(f"No column {column} in the data (columns: {', '.join(df.columns)}).")
    k = keys or load_keys()
    return df.withColumn(alias or actual, _decrypt_udf(k, table, actual)(df[actual]))
