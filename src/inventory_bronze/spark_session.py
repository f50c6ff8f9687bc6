"""The Spark session of the product's commands: on Databricks the cluster's; on one machine the local
runtime's (localdlt), loading the checkout's jars (`.cache/jars`: Delta Lake and PostgreSQL's JDBC driver,
fetched by scripts/setup) unless $LOCALDLT_JARS names others."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pyspark.sql import SparkSession

from inventory_bronze.errors import ConfigError


def get_spark(
    app_name: str = "inventory-bronze", conf: Mapping[str, str] | None = None, jit: str | None = None
) -> SparkSession:
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return SparkSession.builder.getOrCreate()
    use_checkout_jars()
    try:
        from localdlt import get_spark as local_session
    except ModuleNotFoundError:
        raise ConfigError(
            "No Spark here: on one machine the commands run on the local runtime localdlt, which is not "
            "installed (scripts/setup installs it)."
        ) from None
    return local_session(app_name, conf, jit)


def use_checkout_jars() -> None:
    """$LOCALDLT_JARS defaults to the checkout's jar folder (when the local tools are installed)."""
    try:
        from inventory_devkit import project
    except ModuleNotFoundError:
        return
    os.environ.setdefault("LOCALDLT_JARS", str(project.JARS))
