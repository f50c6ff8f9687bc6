"""One exception hierarchy for the PostgreSQL source: the local server, the schema, the generator, the
change workload, snapshot reads (and, from other modules, secrets and change capture). Every message names
the table, column, setting or file at fault and says what to do. No message ever holds a password."""

from __future__ import annotations


class SourceError(Exception):
    """Base class of every error the source package raises on purpose."""


class ServerError(SourceError):
    """The local PostgreSQL server could not be initialised, started, stopped or reached."""


class ServerNotRunning(ServerError):
    """An operation needs the local server, and it is not running."""


class ConnectionFailed(SourceError):
    """A connection to the source database was refused (bad credentials, wrong host/port, no server)."""


class SchemaError(SourceError):
    """The source schema declaration is inconsistent, or the database does not match it."""


class GeneratorError(SourceError):
    """The data generator got arguments it cannot honour, or loading a table failed."""


class WorkloadError(SourceError):
    """The change workload got arguments it cannot honour, or a change transaction failed."""


class SnapshotError(SourceError):
    """A snapshot read of a source table could not be set up or run."""
