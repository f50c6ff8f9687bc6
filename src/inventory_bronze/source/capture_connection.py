"""Connections for change capture, from the secrets chain: options name the secrets, never hold values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from inventory_bronze.secrets import (
    SecretNames,
    SecretValue,
    SourceConnection,
    default_chain,
    parse_connection_url,
    redact,
    source_connection,
)
from inventory_bronze.source.errors import ConnectionFailed

if TYPE_CHECKING:
    import psycopg

#: `pgcdc` options that name secrets (values are secret *names*) and the chain's settings.
OPT_URL_SECRET = "urlSecret"
OPT_USER_SECRET = "userSecret"
OPT_PASSWORD_SECRET = "passwordSecret"
OPT_SCOPE = "secretScope"
OPT_VAULT_URL = "keyVaultUrl"
OPT_SECRETS_FILE = "secretsFile"
#: Resolved values, for runtimes whose Python workers cannot reach the secrets chain (Databricks: dbutils
#: exists only in the notebook's process). Spark redacts options named like *password* in plans and UIs.
OPT_URL, OPT_USER, OPT_PASSWORD = "url", "user", "password"
#: the capture's connections (queries, snapshots, replication streams) say so in pg_stat_activity
APPLICATION_NAME = "inventory-bronze-capture"


def lower_keys(options: Mapping[str, str]) -> dict[str, str]:
    """Spark hands data sources case-insensitive options (lower-cased keys once copied): normalise."""
    return {str(k).lower(): v for k, v in options.items()}


def connection_from_options(options: Mapping[str, str]) -> SourceConnection:
    """The source connection: from resolved `url`/`user`/`password` options when given (see
    `resolved_options`), else through the secrets chain with secret names from `options`."""
    from pathlib import Path

    options = lower_keys(options)
    if options.get(OPT_PASSWORD) is not None:
        missing = [k for k in (OPT_URL, OPT_USER) if not options.get(k)]
        if missing:
            raise ConnectionFailed(f"Option 'password' is set, so options {missing} are needed too.")
        # the secrets the values were resolved from (`resolved_options` passes their names): errors name those
        url_name, user_name, password_name = (
            options.get(name_opt.lower()) or f"option '{value_opt}'"
            for name_opt, value_opt in (
                (OPT_URL_SECRET, OPT_URL),
                (OPT_USER_SECRET, OPT_USER),
                (OPT_PASSWORD_SECRET, OPT_PASSWORD),
            )
        )
        host, port, database, params = parse_connection_url(options[OPT_URL], secret_name=url_name)
        password = SecretValue(options[OPT_PASSWORD], password_name, "stream options")
        return SourceConnection(
            host, port, database, options[OPT_USER], password, params, url_name, user_name, password_name
        )

    defaults = SecretNames.from_env()
    names = SecretNames(
        options.get(OPT_URL_SECRET.lower(), defaults.url),
        options.get(OPT_USER_SECRET.lower(), defaults.user),
        options.get(OPT_PASSWORD_SECRET.lower(), defaults.password),
    )
    secrets_file = options.get(OPT_SECRETS_FILE.lower())
    chain = default_chain(
        scope=options.get(OPT_SCOPE.lower()),
        vault_url=options.get(OPT_VAULT_URL.lower()),
        secrets_file=Path(secrets_file) if secrets_file else None,
    )
    return source_connection(names, chain)


def open_connection(
    conn: SourceConnection,
    *,
    autocommit: bool = True,
    retry_for_s: float = 0.0,
    **extra: Any,
) -> psycopg.Connection:
    """A psycopg connection. Refused connections are retried with exponential backoff
    (`inventory_bronze.source.retry`): 1 s, 2 s, 4 s by default, or doubling delays for `retry_for_s`
    seconds (a restarting server); a wrong password is not retried. Errors name the secrets to check,
    never their values."""
    import psycopg

    from inventory_bronze.source import retry

    def attempt() -> psycopg.Connection:
        try:
            return psycopg.connect(
                conn.conninfo(application_name=APPLICATION_NAME, **extra),
                autocommit=autocommit,
                connect_timeout=10,
            )
        except psycopg.OperationalError as err:
            text = redact(str(err).strip(), [conn.password])
            last = text.splitlines()[-1] if text else type(err).__name__
            if "password authentication failed" in text or "authentication failed" in text:
                raise ConnectionFailed(
                    f"PostgreSQL at {conn.describe()} refused the password from secret "
                    f"'{conn.password_secret}' for the user from secret '{conn.user_secret}': fix those "
                    f"secrets (or name others with options '{OPT_PASSWORD_SECRET}'/'{OPT_USER_SECRET}'). "
                    f"Server said: {last}"
                ) from None
            raise ConnectionFailed(
                f"Cannot connect to PostgreSQL at {conn.describe()} (from secret '{conn.url_secret}'): "
                f"{last}. Start the server (`inventory-bronze db start`) or fix the connection secrets."
            ) from None

    backoff = retry.Backoff.within(retry_for_s) if retry_for_s > 0 else None
    return retry.call(
        attempt,
        what=f"connection to the source (secret '{conn.url_secret}')",
        host=conn.describe(),
        backoff=backoff,
        secrets=[conn.password],
    )


def resolved_options(names: SecretNames | None = None, chain: Any = None) -> dict[str, str]:
    """`url`/`user`/`password` options resolved through the secrets chain in *this* process, for
    `spark.readStream.format("pgcdc").options(**resolved_options())` where the data source's Python workers
    cannot reach the chain themselves (on Databricks, dbutils lives in the notebook's process only)."""
    conn = source_connection(names, chain)
    return {
        OPT_URL: conn.jdbc_url,
        OPT_USER: conn.user,
        OPT_PASSWORD: conn.password.reveal(),
        # names only, for errors that say which secret to fix
        OPT_URL_SECRET: conn.url_secret,
        OPT_USER_SECRET: conn.user_secret,
        OPT_PASSWORD_SECRET: conn.password_secret,
    }
