"""The product's exception hierarchy. Every message names the table, column, setting or file at fault and
says what to do; none ever holds a secret or a PII value. (Errors of the local runtime are
`localdlt.errors.PipelineError`; the source package's are `inventory_bronze.source.errors.SourceError`.)"""

from __future__ import annotations


class InventoryBronzeError(Exception):
    """Base class of the errors the inventory_bronze package raises on purpose."""


class ConfigError(InventoryBronzeError):
    """conf/tables.yml (or a bundle resource) is invalid: the message names the file, table and key."""


class PiiProtectionError(InventoryBronzeError):
    """PII cannot be protected (e.g. the encryption key is missing): the update must fail closed."""


class SchemaDriftError(InventoryBronzeError):
    """The source's schema changed in a way the table's `schema_evolution` setting refuses."""
