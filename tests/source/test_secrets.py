"""The secrets chain: Key Vault through the real azure-keyvault-secrets client against a Key Vault API
double, the local providers, fail-closed behaviour, and that no value ever reaches a repr, str or error."""

from __future__ import annotations

import json
import pickle
import socket
import time
from pathlib import Path

import pytest

from inventory_bronze.secrets import (
    AzureKeyVaultSecrets,
    DatabricksSecrets,
    EnvironmentSecrets,
    LocalFileSecrets,
    SecretChain,
    SecretError,
    SecretNames,
    SecretNotFound,
    SecretProviderError,
    SecretValue,
    default_chain,
    env_var_for,
    fixed_token_credential,
    parse_connection_url,
    source_connection,
)

VALUE = "s3cr3t-V4lue-never-printed"


def test_secret_value_never_prints_itself() -> None:
    secret = SecretValue(VALUE, "KPassword", "test")
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret:>40}",
        repr([secret]),
        repr({"p": secret}),
    ):
        assert VALUE not in text
    assert secret.reveal() == VALUE
    assert pickle.loads(pickle.dumps(secret)).reveal() == VALUE


def test_keyvault_provider_reads_from_the_vault_double(keyvault_double) -> None:
    keyvault_double.set_secret("KPassword", VALUE)
    keyvault_double.set_secret("KPassword", VALUE + "-v2")  # newest version wins
    chain = SecretChain([keyvault_double.provider()])
    secret = chain.get("KPassword")
    assert secret.reveal() == VALUE + "-v2"
    assert "Azure Key Vault" in secret.provider and VALUE not in repr(secret)


def test_keyvault_missing_secret_falls_through_then_fails_closed(keyvault_double, tmp_path: Path) -> None:
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"KUser": "from-file"}))
    chain = SecretChain([keyvault_double.provider(), EnvironmentSecrets({}), LocalFileSecrets(local)])
    assert chain.get("KUser").reveal() == "from-file"
    with pytest.raises(SecretNotFound) as err:
        chain.get("KNoSuchSecret")
    message = str(err.value)
    assert "KNoSuchSecret" in message and keyvault_double.url in message and "local.json" in message
    assert "az keyvault secret set" in message


def test_unreachable_vault_fails_fast_naming_vault_and_secret() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    provider = AzureKeyVaultSecrets(url, fixed_token_credential(), 2.0, {"verify_challenge_resource": False})
    started = time.monotonic()
    with pytest.raises(SecretProviderError) as err:
        SecretChain([provider, EnvironmentSecrets({env_var_for("KPassword"): VALUE})]).get("KPassword")
    assert time.monotonic() - started < 20
    assert url in str(err.value) and "KPassword" in str(err.value) and "unreachable" in str(err.value)
    assert VALUE not in str(err.value)  # failed closed: the env fallback was not used


def test_environment_overrides_file_and_names_are_configurable(tmp_path: Path, monkeypatch) -> None:
    local = tmp_path / "local.json"
    local.write_text(
        json.dumps(
            {
                "KConnectionString": "jdbc:postgresql://127.0.0.1:5544/DE?sslmode=disable",
                "KUser": "u",
                "KPassword": VALUE,
            }
        )
    )
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.delenv("INVENTORY_BRONZE_KEYVAULT_URL", raising=False)
    monkeypatch.setenv(env_var_for("KUser"), "env-user")
    chain = default_chain(secrets_file=local)
    conn = source_connection(SecretNames(), chain)
    assert (conn.host, conn.port, conn.database, conn.user) == ("127.0.0.1", 5544, "DE", "env-user")
    assert VALUE not in repr(conn) and VALUE in conn.conninfo() and "sslmode=disable" in conn.conninfo()
    monkeypatch.setenv(env_var_for("MyPwd"), "other")
    names = SecretNames(password="MyPwd")
    assert source_connection(names, default_chain(secrets_file=local)).password.reveal() == "other"


def test_databricks_provider_uses_dbutils_and_reports_missing() -> None:
    class _Secrets:
        def get(self, scope: str, key: str) -> str:
            if key == "KUser":
                return "dbx-user"
            raise RuntimeError(f"Secret does not exist with scope: {scope} and key: {key}")

    class _DbUtils:
        secrets = _Secrets()

    provider = DatabricksSecrets("kv-scope", lambda: _DbUtils())
    chain = SecretChain([provider])
    assert chain.get("KUser").reveal() == "dbx-user"
    with pytest.raises(SecretNotFound, match="kv-scope"):
        chain.get("KPassword")


def test_unreadable_file_and_bad_url_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json " + VALUE)
    with pytest.raises(SecretProviderError) as err:
        SecretChain([LocalFileSecrets(bad)]).get("KPassword")
    assert "KPassword" in str(err.value) and VALUE not in str(err.value)
    with pytest.raises(SecretError, match="KConnectionString"):
        parse_connection_url("mysql://x/y")


def test_bad_password_names_the_secret_not_the_value(pg_server, tmp_path: Path) -> None:
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.errors import ConnectionFailed

    local = tmp_path / "local.json"
    local.write_text(
        json.dumps({"KConnectionString": pg_server.jdbc_url, "KUser": pg_server.user, "KPassword": VALUE})
    )
    conn = source_connection(SecretNames(), SecretChain([LocalFileSecrets(local)]))
    with pytest.raises(ConnectionFailed) as err:
        open_connection(conn)
    text = str(err.value)
    assert "KPassword" in text and VALUE not in text and str(pg_server.port) in text
