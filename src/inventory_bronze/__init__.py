"""The bronze layer of the inventory platform: PostgreSQL `DE.tests` to Delta `bz_*` tables."""

__version__ = "0.1.0"
