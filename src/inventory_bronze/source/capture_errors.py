"""Errors of log-based change capture. All derive from `SourceError`; messages name the table, slot,
publication, column or secret at fault and say what to do; none holds a secret's value."""

from __future__ import annotations

from inventory_bronze.source.errors import SourceError


class CaptureError(SourceError):
    """Change capture could not be set up or could not go on."""


class CaptureConfigError(CaptureError):
    """An option of the `pgcdc` source or of `inventory-bronze capture` is missing or invalid."""


class ReplicaIdentityError(CaptureError):
    """A captured table's REPLICA IDENTITY cannot identify the rows its updates and deletes touch."""


class SlotMissingError(CaptureError):
    """The replication slot (or publication) of a capture does not exist."""


class SlotInvalidatedError(CaptureError):
    """The replication slot lost WAL the stream still needs (invalidated), or is ahead of the checkpoint."""


class DecodeError(CaptureError):
    """A pgoutput message could not be decoded, or a value could not be converted to its Spark type."""


class CaptureSchemaChanged(CaptureError):
    """The captured table gained a column, or changed a column's type, after the stream's schema was read."""
