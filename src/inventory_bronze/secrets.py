"""One secrets chain for every job: Databricks secret scope -> Azure Key Vault -> local environment/file.

The chain asks its providers in order and returns the first value found:

1. **Databricks** (when `DATABRICKS_RUNTIME_VERSION` is set): `dbutils.secrets.get(scope, key)`, scope from
   `INVENTORY_BRONZE_SECRET_SCOPE` (default `inventory-bronze`; a Key Vault-backed scope in production).
2. **Azure Key Vault** (when `INVENTORY_BRONZE_KEYVAULT_URL` is set): `azure-keyvault-secrets` with
   `DefaultAzureCredential`, bounded time-outs and few retries, so an unreachable vault fails in seconds.
3. **Environment**: `INVENTORY_BRONZE_SECRET_<NAME>` (`NAME` upper-cased, non-alphanumerics as `_`).
4. **Local file**: the JSON object in `INVENTORY_BRONZE_SECRETS_FILE` (default `var/secrets/local.json`,
   written by `inventory-bronze db start`).

A provider that does not hold the secret passes to the next; a provider that fails (vault unreachable,
credential refused) stops the chain: the chain fails closed rather than falling back to a weaker source.
Values are wrapped in `SecretValue`, whose `repr`/`str` never show them; errors name the secret and the
provider, never a value. The seed's names are the defaults: `KConnectionString`, `KUser`, `KPassword`.

Long because: the whole secrets chain (environment, local file, Databricks secret scope, Azure Key Vault)
with its one-line errors; each provider is a short class.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from inventory_bronze.source.errors import SourceError

ENV_KEYVAULT_URL = "INVENTORY_BRONZE_KEYVAULT_URL"
ENV_SCOPE = "INVENTORY_BRONZE_SECRET_SCOPE"
ENV_PREFIX = "INVENTORY_BRONZE_SECRET_"
ENV_SECRETS_FILE = "INVENTORY_BRONZE_SECRETS_FILE"
ENV_KEYVAULT_TIMEOUT = "INVENTORY_BRONZE_KEYVAULT_TIMEOUT"
ENV_NAME_URL = "INVENTORY_BRONZE_SECRET_NAME_URL"
ENV_NAME_USER = "INVENTORY_BRONZE_SECRET_NAME_USER"
ENV_NAME_PASSWORD = "INVENTORY_BRONZE_SECRET_NAME_PASSWORD"
DEFAULT_SCOPE = "inventory-bronze"
DEFAULT_KEYVAULT_TIMEOUT_S = 10.0


class SecretError(SourceError):
    """A secret could not be read. Messages name the secret and the provider, never a value."""


class SecretNotFound(SecretError):
    """No provider of the chain holds the secret."""


class SecretProviderError(SecretError):
    """A provider failed (unreachable vault, refused credential, unreadable file): the chain stops."""


class SecretValue:
    """A secret's value that does not print itself. Use `reveal()` only where the value is consumed."""

    __slots__ = ("_value", "name", "provider")

    def __init__(self, value: str, name: str, provider: str) -> None:
        self._value = value
        self.name = name
        self.provider = provider

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue(name={self.name!r}, provider={self.provider!r}, value='***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable for Spark tasks, still redacted when printed
        return (SecretValue, (self._value, self.name, self.provider))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value and other.name == self.name

    def __hash__(self) -> int:
        return hash((self.name, self.provider))


class SecretProvider(Protocol):
    """One source of secrets. `get` returns None when it does not hold the secret."""

    @property
    def label(self) -> str: ...

    def get(self, name: str) -> str | None: ...

    def how_to_set(self, name: str) -> str: ...


# --- providers ------------------------------------------------------------------------------------------


def on_databricks() -> bool:
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def _databricks_dbutils() -> Any:
    """dbutils as a Databricks notebook or job sees it."""
    try:
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        return DBUtils(SparkSession.getActiveSession() or SparkSession.builder.getOrCreate())
    except ImportError:
        import IPython  # type: ignore[import-not-found]

        shell = IPython.get_ipython()
        if shell is None or "dbutils" not in shell.user_ns:
            raise SecretProviderError(
                "On Databricks but dbutils is not reachable (no pyspark.dbutils, no notebook shell): "
                "run inside a Databricks notebook, job or pipeline."
            ) from None
        return shell.user_ns["dbutils"]


@dataclass
class DatabricksSecrets:
    """`dbutils.secrets.get(scope, key)`; a Key Vault-backed scope reads the vault with the cluster's rights."""

    scope: str = DEFAULT_SCOPE
    dbutils_factory: Callable[[], Any] = _databricks_dbutils

    @property
    def label(self) -> str:
        return f"Databricks secret scope '{self.scope}'"

    def get(self, name: str) -> str | None:
        dbutils = self.dbutils_factory()
        try:
            return str(dbutils.secrets.get(scope=self.scope, key=name))
        except Exception as err:  # dbutils raises py4j/IllegalArgument errors without a class of its own
            text = str(err)
            if "does not exist" in text or "not found" in text.lower():
                return None
            raise SecretProviderError(
                f"Reading secret '{name}' from {self.label} failed ({type(err).__name__}): check that the "
                f"scope exists and the job's principal may read it (databricks secrets list-acls {self.scope})."
            ) from None

    def how_to_set(self, name: str) -> str:
        return (
            f"add '{name}' to the Key Vault behind scope '{self.scope}' (or `databricks secrets put-secret`)"
        )


class _FixedTokenCredential:
    """A TokenCredential that returns one fixed bearer token (for Key Vault doubles such as Lowkey Vault)."""

    def __init__(self, token: str = "local-double") -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import time

        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        import time

        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + 3600)


def fixed_token_credential(token: str = "local-double") -> Any:
    """A credential for Key Vault API doubles that accept any bearer token."""
    return _FixedTokenCredential(token)


@dataclass
class AzureKeyVaultSecrets:
    """Azure Key Vault through `azure-keyvault-secrets`. `credential` defaults to DefaultAzureCredential.

    `timeout_s` bounds connecting and reading (one retry), so an unreachable vault fails within about
    3 x timeout_s. `client_kwargs` go to SecretClient (e.g. `connection_verify=<CA bundle>`,
    `verify_challenge_resource=False` for a local double)."""

    vault_url: str
    credential: Any = None
    timeout_s: float = DEFAULT_KEYVAULT_TIMEOUT_S
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    _client: Any = field(default=None, init=False, repr=False)

    @property
    def label(self) -> str:
        return f"Azure Key Vault {self.vault_url}"

    def _secret_client(self) -> Any:
        if self._client is None:
            from azure.keyvault.secrets import SecretClient

            credential = self.credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            kwargs: dict[str, Any] = {
                "connection_timeout": self.timeout_s,
                "read_timeout": self.timeout_s,
                "retry_total": 1,
                "retry_backoff_factor": 0.2,
                "retry_backoff_max": 1,
                **self.client_kwargs,
            }
            self._client = SecretClient(vault_url=self.vault_url, credential=credential, **kwargs)
        return self._client

    def get(self, name: str) -> str | None:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            secret = self._secret_client().get_secret(name)
        except ResourceNotFoundError:
            return None
        except ClientAuthenticationError as err:
            raise SecretProviderError(
                f"{self.label} refused the credential while reading secret '{name}' "
                f"({type(err).__name__}): sign in (az login), or give this identity 'get' on secrets."
            ) from None
        except (ServiceRequestError, ServiceResponseError) as err:
            raise SecretProviderError(
                f"{self.label} is unreachable while reading secret '{name}' ({type(err).__name__}, "
                f"time-out {self.timeout_s:.0f} s): check {ENV_KEYVAULT_URL}, the network and the "
                f"vault's firewall."
            ) from None
        except HttpResponseError as err:
            raise SecretProviderError(
                f"{self.label} answered HTTP {err.status_code} for secret '{name}': check the vault's "
                f"access policy for this identity."
            ) from None
        except Exception as err:  # credential chain failures etc.; never include the exception text
            raise SecretProviderError(
                f"Reading secret '{name}' from {self.label} failed ({type(err).__name__}): check the "
                f"Azure credential (DefaultAzureCredential) and {ENV_KEYVAULT_URL}."
            ) from None
        return None if secret.value is None else str(secret.value)

    def how_to_set(self, name: str) -> str:
        return f"az keyvault secret set --vault-name <vault> --name {name} --value <value> ({self.vault_url})"


def env_var_for(name: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


@dataclass
class EnvironmentSecrets:
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def label(self) -> str:
        return f"environment ({ENV_PREFIX}<NAME>)"

    def get(self, name: str) -> str | None:
        return self.environ.get(env_var_for(name))

    def how_to_set(self, name: str) -> str:
        return f"export {env_var_for(name)}=<value>"


def default_secrets_file() -> Path:
    env = os.environ.get(ENV_SECRETS_FILE)
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "inventory_bronze").is_dir():
            return parent / "var" / "secrets" / "local.json"
    return Path.cwd() / "var" / "secrets" / "local.json"


@dataclass
class LocalFileSecrets:
    path: Path = field(default_factory=default_secrets_file)

    @property
    def label(self) -> str:
        return f"local secrets file {self.path}"

    def get(self, name: str) -> str | None:
        if not self.path.is_file():
            return None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SecretProviderError(
                f"The {self.label} is unreadable ({type(err).__name__}) while looking for secret '{name}': "
                f"rewrite it with `inventory-bronze db start`, or fix its JSON."
            ) from None
        if not isinstance(data, dict):
            raise SecretProviderError(f"The {self.label} must hold a JSON object of secret name -> value.")
        value = data.get(name)
        return None if value is None else str(value)

    def how_to_set(self, name: str) -> str:
        return f'run `inventory-bronze db start` (writes {self.path}) or add "{name}" to it'


# --- the chain ------------------------------------------------------------------------------------------


@dataclass
class SecretChain:
    providers: Sequence[SecretProvider]

    def get(self, name: str) -> SecretValue:
        if not name:
            raise SecretError("A secret name is empty: check the secret-name settings.")
        for provider in self.providers:
            value = provider.get(name)
            if value is not None:
                return SecretValue(value, name, provider.label)
        tried = "; ".join(p.label for p in self.providers) or "no provider configured"
        todo = "; or ".join(p.how_to_set(name) for p in self.providers)
        raise SecretNotFound(f"Secret '{name}' was not found (tried: {tried}). To provide it: {todo}.")

    def describe(self) -> list[str]:
        return [p.label for p in self.providers]


def default_chain(
    *,
    scope: str | None = None,
    vault_url: str | None = None,
    secrets_file: Path | None = None,
    keyvault_credential: Any = None,
    keyvault_kwargs: Mapping[str, Any] | None = None,
) -> SecretChain:
    """The chain for this environment: Databricks scope (on Databricks) -> Key Vault (when a URL is set)
    -> environment -> local file."""
    providers: list[SecretProvider] = []
    if on_databricks():
        providers.append(DatabricksSecrets(scope or os.environ.get(ENV_SCOPE) or DEFAULT_SCOPE))
    url = vault_url or os.environ.get(ENV_KEYVAULT_URL)
    if url:
        timeout = float(os.environ.get(ENV_KEYVAULT_TIMEOUT, DEFAULT_KEYVAULT_TIMEOUT_S))
        providers.append(AzureKeyVaultSecrets(url, keyvault_credential, timeout, dict(keyvault_kwargs or {})))
    providers.append(EnvironmentSecrets())
    providers.append(LocalFileSecrets(secrets_file or default_secrets_file()))
    return SecretChain(providers)


def get_secret(name: str, chain: SecretChain | None = None) -> SecretValue:
    return (chain or default_chain()).get(name)


# --- the source connection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretNames:
    """Which secrets hold the source's JDBC URL, user and password (the seed's names by default)."""

    url: str = "KConnectionString"
    user: str = "KUser"
    password: str = "KPassword"

    @classmethod
    def from_env(cls) -> SecretNames:
        return cls(
            os.environ.get(ENV_NAME_URL, cls.url),
            os.environ.get(ENV_NAME_USER, cls.user),
            os.environ.get(ENV_NAME_PASSWORD, cls.password),
        )


@dataclass(frozen=True)
class SourceConnection:
    """Where and as whom to connect to the source. `password` stays wrapped until `conninfo()`."""

    host: str
    port: int
    database: str
    user: str
    password: SecretValue = field(repr=False)
    params: tuple[tuple[str, str], ...] = ()
    url_secret: str = "KConnectionString"
    user_secret: str = "KUser"
    password_secret: str = "KPassword"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def conninfo(self, **extra: str) -> str:
        from psycopg.conninfo import make_conninfo

        libpq = {k: v for k, v in self.params if k in _LIBPQ_PARAMS}
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=self.database,
            user=self.user,
            password=self.password.reveal(),
            **libpq,
            **extra,
        )


_LIBPQ_PARAMS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options"})


def parse_connection_url(url: str, *, secret_name: str = "KConnectionString") -> tuple[str, int, str, tuple]:
    """host, port, database and query parameters of a `jdbc:postgresql://` or `postgresql://` URL.
    Credentials inside the URL are ignored (they come from their own secrets)."""
    raw = url.strip()
    if raw.startswith("jdbc:"):
        raw = raw[len("jdbc:") :]
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise SecretError(
            f"Secret '{secret_name}' is not a PostgreSQL URL (expected jdbc:postgresql://host:port/database): "
            f"fix the secret's value."
        )
    database = parts.path.lstrip("/") or "postgres"
    return parts.hostname, parts.port or 5432, database, tuple(parse_qsl(parts.query))


def source_connection(names: SecretNames | None = None, chain: SecretChain | None = None) -> SourceConnection:
    """The source connection from the secrets chain (names default to the seed's)."""
    names = names or SecretNames.from_env()
    chain = chain or default_chain()
    url = chain.get(names.url)
    user = chain.get(names.user)
    password = chain.get(names.password)
    host, port, database, params = parse_connection_url(url.reveal(), secret_name=names.url)
    return SourceConnection(
        host, port, database, user.reveal(), password, params, names.url, names.user, names.password
    )


def redact(text: str, secrets: Iterable[SecretValue]) -> str:
    """Replace every secret value that appears in `text` by ***."""
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, "***")
    return text
