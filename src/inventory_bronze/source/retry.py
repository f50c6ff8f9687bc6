"""Retries of source connections with exponential backoff: the snapshot reads (JDBC) and the change
capture's connections go through `call`.

A transient failure (the server refuses connections, is shutting down or restarting, the network drops)
is retried after 1 s, 2 s and 4 s (`Backoff()`: 3 retries, first delay 1 s, factor 2; the snapshot reads
take conf/tables.yml's `source.retry`), then fails with `SourceUnavailable`, naming what was being read
(the table), the host and the attempts. Anything else (a wrong password, a missing table or column, a
bad query) fails at once: retrying cannot fix it. Messages never carry a secret: the caller's secrets are
redacted from the server's text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from inventory_bronze.source.errors import ConnectionFailed

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Texts of transient failures, from psycopg (libpq) and from the PostgreSQL JDBC driver through Spark.
TRANSIENT = (
    "connection refused",
    "could not connect to server",
    "connection to server",
    "the connection attempt failed",
    "server closed the connection",
    "terminating connection due to administrator command",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "an i/o error occurred while sending to the backend",
    "connection reset",
    "no route to host",
    "connection timed out",
    "cannot connect to postgresql",
    "check that the hostname and port are correct",
    "couldn't connect to the database",
)
#: Never transient, even when a text above appears too.
PERMANENT = (
    "password authentication failed",
    "authentication failed",
    "refused the password",
    "does not exist",
)


class SourceUnavailable(ConnectionFailed):
    """The source stayed unreachable through every retry."""


@dataclass(frozen=True)
class Backoff:
    retries: int = 3
    first_delay_s: float = 1.0
    factor: float = 2.0

    def delays(self) -> list[float]:
        return [self.first_delay_s * self.factor**i for i in range(self.retries)]

    @classmethod
    def within(cls, seconds: float, first_delay_s: float = 0.2, factor: float = 2.0) -> Backoff:
        """As many doubling delays as fit in `seconds` (a restarting server, a long-running stream)."""
        retries, total, delay = 0, 0.0, first_delay_s
        while total + delay <= seconds:
            retries, total, delay = retries + 1, total + delay, delay * factor
        return cls(retries, first_delay_s, factor)


def is_transient(err: BaseException) -> bool:
    text = _text(err).lower()
    if any(p in text for p in PERMANENT):
        return False
    return isinstance(err, (ConnectionError, TimeoutError)) or any(t in text for t in TRANSIENT)


def _text(err: BaseException) -> str:
    """The error's text and, for a JVM error (py4j, or PySpark's converted exceptions such as
    [FAILED_JDBC.CONNECTION]), the messages of its Java causes: the JDBC driver's own sentence."""
    texts = [str(err)]
    cause = getattr(err, "_origin", None) or getattr(err, "java_exception", None)
    for _ in range(8):
        if cause is None:
            break
        try:
            texts.append(str(cause.getMessage()))
            cause = cause.getCause()
        except Exception:  # not a Java throwable after all
            break
    return "\n".join(texts)


def _last_line(text: str, secrets: Iterable[Any], wanted: str | None = None) -> str:
    for secret in secrets:
        value = secret.reveal() if hasattr(secret, "reveal") else str(secret)
        if value:
            text = text.replace(value, "***")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:  # the driver's own sentence rather than a stack frame
        if any(t in line.lower() for t in ((wanted,) if wanted else TRANSIENT)):
            return line[:300]
    return (lines[0] if lines else "")[:300]


def call(
    fn: Callable[[], T],
    *,
    what: str,
    host: str,
    backoff: Backoff | None = None,
    secrets: Iterable[Any] = (),
    credentials: str = "",
    transient: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`fn()`, retried on transient failures; `what` names the read (e.g. "snapshot of tests.orders"),
    `credentials` where the user and password come from (named in an authentication failure)."""
    backoff = backoff or Backoff()
    delays = backoff.delays()
    secrets = list(secrets)
    for attempt in range(len(delays) + 1):
        try:
            return fn()
        except Exception as err:
            if credentials and "password authentication failed" in _text(err).lower():
                raise ConnectionFailed(
                    f"{what}: PostgreSQL at {host} refused the credentials {credentials}: fix those secrets. "
                    f"Server said: {_last_line(_text(err), secrets, 'authentication failed')}"
                ) from None
            if not transient(err):
                raise
            reason = _last_line(_text(err), secrets)
            if attempt == len(delays):
                waited = ", ".join(f"{d:g} s" for d in delays) or "no retry"
                raise SourceUnavailable(
                    f"{what}: PostgreSQL at {host} is unreachable after {attempt + 1} attempt(s) (waited "
                    f"{waited}): {reason}. Start the server (`inventory-bronze db start`) or fix the "
                    f"connection secrets, then run the update again; nothing was written for it."
                ) from None
            log.warning(
                "%s: %s unreachable (%s); retry %d in %g s", what, host, reason, attempt + 1, delays[attempt]
            )
            sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover
