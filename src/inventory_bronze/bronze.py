"""What a pipeline file under `pipelines/` calls: one `BronzeTable` per source table, built once from the
configuration (`conf/tables.yml`, at the pipeline setting `inventory.config_path`), that knows the table's
dataset names, its rules, its PII treatment and how its rows are read and prepared.

Per table, in this order:
  source     -> the PostgreSQL table: a consistent JDBC snapshot (batch, full_refresh) or the log-based
                change stream `pgcdc` (cdc, micro_batch): inventory_bronze.source.reads;
  prepare    -> rules evaluated on the plaintext row (`dq_failed_rules`: the rules it fails; deletes and
                truncates carry no row to judge), `data_quality_score` and the metadata columns;
  protect    -> PII columns encrypted (AES-GCM) and hashed; plaintext never reaches a Delta table;
  expectations on the prepared rows, by rule name (`NOT array_contains(dq_failed_rules, '<rule>')`), so a
                rule written against a PII column still judges the plaintext;
  quarantine -> rows failing a drop or fail rule, with the names of the rules they failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from inventory_bronze import config as cfg
from inventory_bronze import pii, pii_tables, schema_drift
from inventory_bronze.config import BronzeConfig, Pattern, PiiTreatment, TableConfig
from inventory_bronze.errors import ConfigError
from inventory_bronze.source import reads
from inventory_bronze.source import schema as source_schema

DQ_FAILED = "dq_failed_rules"  # kept in bronze: which rules (warn included) each row fails
CHANGE_DATE = "_change_date"
CAPTURE_COLUMNS = reads.CAPTURE_COLUMNS

CONF_CONFIG_PATH = "inventory.config_path"  # the pipeline setting naming conf/tables.yml
CONF_UPDATE_ID = "pipelines.updateId"  # set by the local runtime for each update

#: how often a continuous pipeline's quarantine flows run: rejected rows are for data stewards, not on the
#: latency path, and each micro-batch of a flow costs the same fixed work (see docs/performance.md)
QUARANTINE_TRIGGER = {"pipelines.trigger.interval": "30 seconds"}

#: the columns `prepare` adds to every row
METADATA_COLUMNS = (
    DQ_FAILED,
    "data_quality_score",
    "load_timestamp",
    "update_timestamp",
    "source_system",
    "record_status",
    "batch_id",
)


def configuration(spark: SparkSession) -> BronzeConfig:
    """The configuration a pipeline runs with: the file its setting `inventory.config_path` names (read
    once per process, config.load_once)."""
    path = spark.conf.get(CONF_CONFIG_PATH, None)
    if not path:
        raise ConfigError(
            f"The pipeline setting '{CONF_CONFIG_PATH}' is not set: add it to the pipeline's configuration "
            "(resources/*.pipeline.yml: ${workspace.file_path}/conf/tables.yml), or pass "
            f"`--conf {CONF_CONFIG_PATH}=conf/tables.yml` to `inventory-bronze dlt run`."
        )
    return cfg.load_once(path)


@dataclass(frozen=True)
class Names:
    """Dataset names of one source table in the pipeline, all derived from the table's name."""

    table: str

    @property
    def target(self) -> str:
        return cfg.target_name(self.table)

    @property
    def changes(self) -> str:
        return f"{self.target}_changes"

    @property
    def source(self) -> str:
        return f"{self.target}_source"

    @property
    def feed(self) -> str:
        return f"{self.target}_feed"

    @property
    def quarantine(self) -> str:
        return f"{self.target}_quarantine"


@dataclass(frozen=True)
class BronzeTable:
    """One source table in bronze, as one pipeline file declares it."""

    name: str
    settings: BronzeConfig  # the whole configuration, loaded once per process
    spark: SparkSession

    @classmethod
    def load(cls, spark: SparkSession, name: str) -> BronzeTable:
        """Table `name` of the configuration the pipeline setting `inventory.config_path` names."""
        return cls.of(spark, configuration(spark), name)

    @classmethod
    def of(cls, spark: SparkSession, settings: BronzeConfig, name: str) -> BronzeTable:
        settings.table(name)  # an unknown table fails here, naming the configured ones
        return cls(name, settings, spark)

    @property
    def config(self) -> TableConfig:
        """The table's block of conf/tables.yml."""
        return self.settings.table(self.name)

    @property
    def source(self) -> cfg.Source:
        return self.settings.source

    @cached_property
    def names(self) -> Names:
        return Names(self.name)

    @cached_property
    def declared(self) -> source_schema.Table:
        """The source table as declared in inventory_bronze.source.schema."""
        return source_schema.table(self.name)

    @property
    def qualified(self) -> str:
        return f"{self.source.schema_}.{self.name}"

    @property
    def comment(self) -> str:
        return f"{self.qualified} in bronze: {self.config.pattern.value}, {self.config.schedule}"

    # --------------------------------------------------------------------------------------- source
    def snapshot(self) -> DataFrame:
        """The source table as it is now (JDBC), shaped by its `schema_evolution`."""
        return reads.snapshot(
            self.spark,
            self.declared,
            schema_evolution=self.config.schema_evolution,
            retries=self.source.retry,
        )

    def change_stream(self) -> DataFrame:
        """Every change of the source table from PostgreSQL's WAL, shaped by its `schema_evolution`."""
        return reads.change_stream(self.spark, self.declared, schema_evolution=self.config.schema_evolution)

    # -------------------------------------------------------------------------------------- prepare
    def prepare(self, df: DataFrame) -> DataFrame:
        """Rule results, quality score and metadata columns, computed on the plaintext row (a declared column
        the source dropped is judged as NULL, and stays out of the rows: schema_drift)."""
        df, dropped = schema_drift.with_declared(df, self.declared.columns)
        has_op = "_op" in df.columns
        judged = F.col("_op").isin("insert", "update", "snapshot") if has_op else F.lit(True)
        failures = F.when(judged, rule_failures(self.config.rules)).otherwise(F.array().cast("array<string>"))
        n_rules = len(self.config.rules)
        changed_at = [F.col("Updated_At")] + ([F.col("_commit_ts")] if has_op else [])
        deleted = F.when(F.col("_op") == "delete", "deleted").otherwise("active")
        return (
            df.withColumn(DQ_FAILED, failures)
            .withColumn(
                "data_quality_score",
                F.lit(100).cast("int")
                if n_rules == 0
                else F.round(F.lit(100.0) * (n_rules - F.size(DQ_FAILED)) / n_rules).cast("int"),
            )
            .withColumn("load_timestamp", F.current_timestamp())
            .withColumn("update_timestamp", F.coalesce(*changed_at, F.current_timestamp()))
            .withColumn("source_system", F.lit(self.source.system))
            .withColumn("record_status", deleted if has_op else F.lit("active"))
            .withColumn("batch_id", F.lit(update_id(self.spark)))
            .drop(*dropped)
        )

    def protect(self, df: DataFrame) -> DataFrame:
        """PII columns encrypted and hashed (fails closed without a key). In a table that holds PII, a column
        the source added since the table was declared is encrypted too: bronze follows its source, but what
        may be PII is never written in plaintext until it is declared (source/schema.py, and the table's
        `pii` in conf/tables.yml if it is PII)."""
        if not self.config.pii:
            return df
        added = {c: PiiTreatment.encrypt for c in undeclared_columns(df.columns, self.declared)}
        present = {c.lower() for c in df.columns}  # a PII column the source dropped has nothing to protect
        declared = {c: t for c, t in self.config.pii.items() if c.lower() in present}
        return pii.protect(df, self.name, {**added, **declared})

    @staticmethod
    def with_change_date(df: DataFrame) -> DataFrame:
        """The raw change tables are partitioned by the day of the change (they grow without bound)."""
        return df.withColumn(CHANGE_DATE, F.to_date(F.coalesce(F.col("_commit_ts"), F.current_timestamp())))

    # --------------------------------------------------------------------------- rules and quarantine
    def expectations(self, action: str) -> dict[str, str]:
        """{rule name: constraint} of one action, judged on the prepared row's `dq_failed_rules`."""
        return {
            r.name: f"NOT array_contains({DQ_FAILED}, '{r.name}')"
            for r in self.config.rules
            if r.action == action
        }

    def quarantined(self, df: DataFrame) -> DataFrame:
        """Rows a drop or fail rule rejects (`dq_failed_rules` names the rules they failed)."""
        rejecting = [r.name for r in self.config.rules if r.action in ("drop", "fail")]
        if not rejecting:
            return df.where(F.lit(False))
        return df.where(F.arrays_overlap(F.col(DQ_FAILED), F.array(*[F.lit(n) for n in rejecting])))

    # ----------------------------------------------------------------------------------------- target
    @property
    def scd_type(self) -> int:
        """SCD type 2 (history) for the small daily snapshot tables, type 1 for the others."""
        return 2 if self.config.pattern is Pattern.batch else 1

    @property
    def snapshot_history_options(self) -> dict[str, list[str]]:
        """For SCD type 2 snapshots: the load's own metadata changes every update and is no new version."""
        if self.scd_type != 2:
            return {}
        return {
            "track_history_except_column_list": [
                "load_timestamp",
                "batch_id",
                "data_quality_score",
                DQ_FAILED,
            ]
        }

    @property
    def internal_columns(self) -> list[str]:
        """Columns of the feed that the bronze table does not keep."""
        return [*CAPTURE_COLUMNS, CHANGE_DATE] if self.config.pattern.uses_capture else []

    @property
    def large_text_columns(self) -> list[str] | None:
        """Columns whose unchanged TOASTed value the change capture sends as NULL: keep the previous value."""
        return list(self.declared.large_text_columns) or None

    def table_properties(self) -> dict[str, str]:
        return {
            "quality": "bronze",
            "source_table": self.qualified,
            "ingestion_pattern": self.config.pattern.value,
            "schedule": self.config.schedule,
            # a type the source widens is taken by widening the column (schema_drift), here and on Databricks
            "delta.enableTypeWidening": "true",
            **self.pii_properties(),
        }

    def change_archive_properties(self) -> dict[str, str]:
        return {"quality": "bronze", "delta.appendOnly": "true", **self.pii_properties()}

    def pii_properties(self) -> dict[str, str]:
        """For a table with PII columns, the fingerprint of the key that protects it (see pii_tables), declared
        on each of its datasets that holds PII: the bronze table, its quarantine and its change archive."""
        if not self.config.pii:
            return {}
        keys = pii.load_keys()
        published = self.spark.conf.get(pii_tables.PUBLISHED_CONF_KEY, None)
        if published:  # on Databricks: refuse to define the datasets under another key (see check_published)
            pii_tables.check_published(self.spark, published, self.name, self.settings, keys)
        return {pii_tables.PROPERTY: keys.fingerprint}


def rule_failures(rules: list[cfg.Rule]) -> Column:
    """Names of the rules a row fails (a NULL result fails, as in expectations)."""
    if not rules:
        return F.array().cast("array<string>")
    checks = [F.when(~F.coalesce(_constraint(r), F.lit(False)), F.lit(r.name)) for r in rules]
    return F.filter(F.array(*checks), lambda x: x.isNotNull())


def _constraint(rule: cfg.Rule) -> Column:
    """The rule's constraint, parsed by Spark now (F.expr parses only when a query is analysed): a syntax
    error names the rule, before anything runs."""
    session = SparkSession.getActiveSession()
    parser = getattr(session, "_jsparkSession", None) if session is not None else None
    if parser is not None:  # a classic session (Spark Connect parses on the server, at analysis)
        try:
            parser.sessionState().sqlParser().parseExpression(rule.constraint)
        except Exception as err:  # py4j's error holds Spark's ParseException
            text = str(err).strip()
            first = next((line for line in text.splitlines() if "PARSE_SYNTAX_ERROR" in line), text[:200])
            raise ConfigError(
                f"Rule '{rule.name}' ({rule.constraint}) is not valid Spark SQL: {first.strip()}"
            ) from None
    return F.expr(rule.constraint)


# On Databricks no update id reaches pipeline code: one id per pipeline process stands for the update (each
# update evaluates the pipeline source in a process of its own); the audit maps it to the update.
_PROCESS_BATCH_ID = str(uuid.uuid4())


def update_id(spark: SparkSession) -> str:
    """The `batch_id` of the rows this update writes: the running update's id where the runtime gives it
    (the local runtime does), else one id per pipeline process, the same for every flow of the update."""
    return spark.conf.get(CONF_UPDATE_ID, None) or _PROCESS_BATCH_ID


def undeclared_columns(columns: list[str], declared: source_schema.Table) -> list[str]:
    """Those of `columns` that the source added since the table was declared (source/schema.py): neither
    declared nor bronze's own (capture and metadata columns, PII join hashes)."""
    known = {*declared.column_names, *CAPTURE_COLUMNS, CHANGE_DATE, *METADATA_COLUMNS}
    known_lower = {c.lower() for c in known} | {pii.hash_column_name(c).lower() for c in known}
    return [c for c in columns if c.lower() not in known_lower and not c.startswith("__")]
