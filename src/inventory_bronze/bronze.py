"""Pure, typed building blocks of the bronze pipeline. The files under `pipelines/` are thin: they declare
datasets with `dlt` and call these functions, which know the configuration (`conf/tables.yml`).

Per table, in this order:
  source   -> the PostgreSQL table: a consistent JDBC snapshot (batch, full_refresh) or the log-based
              change stream `pgcdc` (cdc, micro_batch);
  prepare  -> rules evaluated on the plaintext row (`dq_failed_rules`: the rules it fails; deletes and
              truncates carry no row to judge), `data_quality_score` and the metadata columns;
  protect  -> PII columns encrypted (AES-GCM) and hashed; plaintext never reaches a Delta table;
  expectations on the prepared rows, by rule name (`NOT array_contains(dq_failed_rules, '<rule>')`), so a rule
              written against a PII column still judges the plaintext;
  quarantine -> rows failing a drop or fail rule, with the names of the rules they failed.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from inventory_bronze import config as cfg
from inventory_bronze import pii, pii_tables, schema_drift
from inventory_bronze.config import BronzeConfig, Pattern, PiiTreatment, TableConfig
from inventory_bronze.errors import ConfigError
from inventory_bronze.source import schema as source_schema

# columns the change capture adds (see inventory_bronze.source.capture)
CAPTURE_COLUMNS = ("_op", "_lsn", "_commit_ts", "_seq", "_unchanged_cols")
DQ_FAILED = "dq_failed_rules"  # kept in bronze: which rules (warn included) each row fails
CHANGE_DATE = "_change_date"

CONF_CONFIG_PATH = "inventory.config_path"
CONF_UPDATE_ID = "pipelines.updateId"  # set by the local runtime for each update


@lru_cache(maxsize=4)
def _load(path: str) -> BronzeConfig:
    return cfg.load(path)


def configuration(
    spark: SparkSession | None = None, path: str | os.PathLike[str] | None = None
) -> BronzeConfig:
    """The bronze configuration: `path` if given, else `inventory.config_path` from the pipeline settings,
    else $INVENTORY_BRONZE_CONFIG, else the repository's conf/tables.yml."""
    if path is None and spark is not None:
        path = spark.conf.get(CONF_CONFIG_PATH, None)
    return _load(str(path or os.environ.get("INVENTORY_BRONZE_CONFIG") or cfg.DEFAULT_PATH))


def table_config(table: str, spark: SparkSession | None = None) -> TableConfig:
    return configuration(spark).table(table)


@dataclass(frozen=True)
class Names:
    """Dataset names of one source table in the pipeline."""

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


# ------------------------------------------------------------------------------------------- source reads
def snapshot(spark: SparkSession, table: str, *, fetch_size: int = 10_000) -> DataFrame:
    """The source table as it is now, through JDBC, with credentials from the secrets chain: the declared
    columns, then any the source added (bronze follows its source)."""
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source import retry

    conn = source_connection()
    declared = source_schema.table(table)
    reader = (
        spark.read.format("jdbc")
        .option("url", conn.jdbc_url)
        .option("dbtable", declared.qualified)
        .option("user", conn.user)
        .option("password", conn.password.reveal())
        .option("driver", "org.postgresql.Driver")
        .option("fetchsize", str(fetch_size))
        .option("preferTimestampNTZ", "true")
    )
    what = f"snapshot of {declared.qualified}"
    credentials = f"from secrets '{conn.user_secret}'/'{conn.password_secret}'"
    frame = retry.call(
        reader.load, what=what, host=conn.describe(), secrets=[conn.password], credentials=credentials
    )
    check_snapshot_values(conn, declared, frame.columns)  # after the load: the source is reachable
    # the declared columns the source still has, then those it added (schema_drift: what bronze does)
    kept = [c for c in declared.column_names if c in frame.columns]
    added = [c for c in frame.columns if c not in declared.column_names]
    return follow_source(frame.select(*kept, *added), table, spark)


def follow_source(frame: DataFrame, table: str, spark: SparkSession) -> DataFrame:
    """The source read shaped by the table's `schema_evolution` (inventory_bronze.schema_drift)."""
    mode = table_config(table, spark).schema_evolution
    declared = source_schema.table(table).column_names
    return schema_drift.follow_source(frame, table, mode, declared, CAPTURE_COLUMNS)


# PostgreSQL values with no Spark counterpart: the JDBC read fails on them without naming table or column
_NUMERIC_SPECIALS = ("NaN", "Infinity", "-Infinity")
_TIME_SPECIALS = ("infinity", "-infinity")


def _special_values(type_: str) -> tuple[str, ...]:
    t = type_.lower()
    if t.startswith(("numeric", "decimal")):
        return _NUMERIC_SPECIALS
    if t.startswith(("timestamp", "date")):
        return _TIME_SPECIALS
    return ()


def check_snapshot_values(conn: Any, declared: Any, present: list[str]) -> None:
    """Fail before the snapshot is read when a numeric column holds NaN or +-Infinity, or a date/timestamp
    column +-infinity: Spark's decimal and time types cannot hold them and the JDBC read would fail with
    an error naming neither table nor column. One scan of the table per snapshot (it is read whole anyway);
    if it cannot run (a column is gone, the source went away), the snapshot read itself reports that."""
    import psycopg
    from psycopg import sql

    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.errors import SnapshotError, SourceError

    checks = [
        (c.name, _special_values(c.type))
        for c in declared.columns
        if _special_values(c.type) and c.name in present  # a column the source dropped is not checked
    ]
    if not checks:
        return
    conditions = [
        sql.SQL("{}::text IN ({})").format(sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, values)))
        for name, values in checks
    ]
    which = sql.SQL("CASE {} END").format(
        sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}").format(cond, sql.Literal(name))
            for cond, (name, _) in zip(conditions, checks, strict=True)
        )
    )
    value = sql.SQL("CASE {} END").format(
        sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}::text").format(cond, sql.Identifier(name))
            for cond, (name, _) in zip(conditions, checks, strict=True)
        )
    )
    key = declared.primary_key[0]
    query = sql.SQL(
        "SELECT {key}::text, {which}, {value}, count(*) OVER () FROM {table} WHERE {any} LIMIT 1"
    ).format(
        key=sql.Identifier(key),
        which=which,
        value=value,
        table=declared.ident(),
        any=sql.SQL(" OR ").join(conditions),
    )
    try:
        with open_connection(conn) as pg:
            found = pg.execute(query).fetchone()
    except (psycopg.Error, OSError, SourceError):
        return
    if found is None:
        return
    key_value, column, special, rows = found
    raise SnapshotError(
        f"{declared.qualified}.{column} holds {special} ({rows} row(s), e.g. {key}={key_value}), which "
        f"Spark cannot represent, so the snapshot of {declared.qualified} cannot be read. Fix those rows at "
        f"the source (e.g. set {column} to NULL or a real value) and run the update again."
    )


def change_stream(spark: SparkSession, table: str) -> DataFrame:
    """Every insert, update, delete and truncate of the source table, from PostgreSQL's WAL."""
    from inventory_bronze.source.capture import register

    register(spark)
    declared = source_schema.table(table)
    reader = spark.readStream.format("pgcdc").option("table", declared.qualified)
    return follow_source(reader.options(**_capture_connection_options()).load(), table, spark)


def _capture_connection_options() -> dict[str, str]:
    """How the data source's Python workers reach the source. They do not share this process's
    environment (on Databricks, dbutils lives in the driver's notebook process only): give them the local
    secrets file when one is set, else the connection resolved here."""
    from inventory_bronze.secrets import on_databricks
    from inventory_bronze.source.capture_connection import resolved_options

    secrets_file = os.environ.get("INVENTORY_BRONZE_SECRETS_FILE")
    if secrets_file and not on_databricks():
        return {"secretsFile": secrets_file}
    return resolved_options()


# ---------------------------------------------------------------------------------------------- prepare
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


def prepare(df: DataFrame, table: str, spark: SparkSession) -> DataFrame:
    """Rule results, quality score and metadata columns, computed on the plaintext row (a declared column the
    source dropped is judged as NULL, and stays out of the rows: schema_drift)."""
    conf = configuration(spark)
    tcfg = conf.table(table)
    df, dropped = schema_drift.with_declared(df, source_schema.table(table).columns)
    has_op = "_op" in df.columns
    judged = F.col("_op").isin("insert", "update", "snapshot") if has_op else F.lit(True)
    failures = F.when(judged, rule_failures(tcfg.rules)).otherwise(F.array().cast("array<string>"))
    n_rules = len(tcfg.rules)
    changed_at = [F.col("Updated_At")] + ([F.col("_commit_ts")] if has_op else [])
    status = F.when(F.col("_op") == "delete", "deleted").otherwise("active") if has_op else F.lit("active")
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
        .withColumn("source_system", F.lit(conf.source.system))
        .withColumn("record_status", status)
        .withColumn("batch_id", F.lit(update_id(spark)))
        .drop(*dropped)
    )


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


def undeclared_columns(columns: list[str], table: str) -> list[str]:
    """Those of `columns` that the source added since the table was declared (source/schema.py): neither
    declared nor bronze's own (capture and metadata columns, PII join hashes)."""
    known = {*source_schema.table(table).column_names, *CAPTURE_COLUMNS, CHANGE_DATE, *METADATA_COLUMNS}
    known_lower = {c.lower() for c in known} | {pii.hash_column_name(c).lower() for c in known}
    return [c for c in columns if c.lower() not in known_lower and not c.startswith("__")]


def protect(df: DataFrame, table: str, spark: SparkSession) -> DataFrame:
    """PII columns encrypted and hashed (fails closed without a key). In a table that holds PII, a column
    the source added since the table was declared is encrypted too: bronze follows its source, but what
    may be PII is never written in plaintext until it is declared (source/schema.py, and the table's
    `pii` in conf/tables.yml if it is PII)."""
    tcfg = table_config(table, spark)
    if not tcfg.pii:
        return df
    added = {c: PiiTreatment.encrypt for c in undeclared_columns(df.columns, table)}
    present = {c.lower() for c in df.columns}  # a PII column the source dropped has nothing to protect
    declared = {c: t for c, t in tcfg.pii.items() if c.lower() in present}
    return pii.protect(df, table, {**added, **declared})


def with_change_date(df: DataFrame) -> DataFrame:
    """The raw change tables are partitioned by the day of the change (they grow without bound)."""
    return df.withColumn(CHANGE_DATE, F.to_date(F.coalesce(F.col("_commit_ts"), F.current_timestamp())))


# ------------------------------------------------------------------------------------------ expectations
def expectations(table: str, action: str, spark: SparkSession | None = None) -> dict[str, str]:
    """{rule name: constraint} of one action, judged on the prepared row's `dq_failed_rules`."""
    return {
        r.name: f"NOT array_contains({DQ_FAILED}, '{r.name}')"
        for r in table_config(table, spark).rules
        if r.action == action
    }


#: how often a continuous pipeline's quarantine flows run: rejected rows are for data stewards, not on the
#: latency path, and each micro-batch of a flow costs the same fixed work (see docs/performance.md)
QUARANTINE_TRIGGER = {"pipelines.trigger.interval": "30 seconds"}


def quarantined(df: DataFrame, table: str, spark: SparkSession | None = None) -> DataFrame:
    """Rows a drop or fail rule rejects (`dq_failed_rules` names the rules they failed)."""
    rejecting = [r.name for r in table_config(table, spark).rules if r.action in ("drop", "fail")]
    if not rejecting:
        return df.where(F.lit(False))
    return df.where(F.arrays_overlap(F.col(DQ_FAILED), F.array(*[F.lit(n) for n in rejecting])))


# ----------------------------------------------------------------------------------------------- targets
def internal_columns(table: str, spark: SparkSession | None = None) -> list[str]:
    """Columns of the feed that the bronze table does not keep."""
    tcfg = table_config(table, spark)
    return [*CAPTURE_COLUMNS, CHANGE_DATE] if tcfg.pattern.uses_capture else []


def large_text_columns(table: str) -> list[str]:
    """Columns whose unchanged TOASTed value the change capture sends as NULL: keep the previous value."""
    return list(source_schema.table(table).large_text_columns)


def history_untracked(table: str) -> list[str]:
    """Columns whose change alone is no new version (SCD type 2): the load's own metadata."""
    return ["load_timestamp", "batch_id", "data_quality_score", DQ_FAILED]


def table_properties(table: str, spark: SparkSession | None = None) -> dict[str, str]:
    tcfg = table_config(table, spark)
    return {
        "quality": "bronze",
        "source_table": f"{configuration(spark).source.schema_}.{table}",
        "ingestion_pattern": tcfg.pattern.value,
        "schedule": tcfg.schedule,
        # a type the source widens is taken by widening the column (schema_drift), here and on Databricks
        "delta.enableTypeWidening": "true",
        **pii_properties(table, spark),
    }


def pii_properties(table: str, spark: SparkSession | None = None) -> dict[str, str]:
    """For a table with PII columns, the fingerprint of the key that protects it (see pii_tables), declared
    on each of its datasets that holds PII: the bronze table, its quarantine and its change archive."""
    if not table_config(table, spark).pii:
        return {}
    keys = pii.load_keys()
    published = spark.conf.get(pii_tables.PUBLISHED_CONF_KEY, None) if spark is not None else None
    if published:  # on Databricks: refuse to define the datasets under another key (see check_published)
        pii_tables.check_published(spark, published, table, configuration(spark), keys)
    return {pii_tables.PROPERTY: keys.fingerprint}


def scd_type(table: str, spark: SparkSession | None = None) -> int:
    return 2 if table_config(table, spark).pattern is Pattern.batch else 1


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def snapshot_history_options(table: str, spark: SparkSession | None = None) -> dict[str, list[str]]:
    """For SCD type 2 snapshots: the load's own metadata changes every update and is no new version."""
    if scd_type(table, spark) != 2:
        return {}
    return {"track_history_except_column_list": history_untracked(table)}


# ---------------------------------------------------------------------------------------- capture set-up
def capture_tables(spark: SparkSession | None = None) -> list[str]:
    """Qualified source tables read through log-based capture (patterns cdc and micro_batch)."""
    return capture_tables_of(configuration(spark))


def capture_tables_of(config: BronzeConfig) -> list[str]:
    """The qualified source tables a configuration reads through log-based capture."""
    return [f"{config.source.schema_}.{name}" for name, t in config.tables.items() if t.pattern.uses_capture]


def ensure_capture(spark: SparkSession | None = None, config_path: str | None = None) -> list[str]:
    """Create the publication and replication slot of every captured table (idempotent); returns what
    it did, one line per table. Run before the first update (`run`, the demo and `capture setup` do)."""
    from inventory_bronze.secrets import source_connection
    from inventory_bronze.source.capture_connection import open_connection
    from inventory_bronze.source.capture_slot import CaptureNames, setup_capture

    lines = []
    with open_connection(source_connection()) as conn:
        for qualified in capture_tables_of(configuration(spark, path=config_path)):
            result = setup_capture(conn, CaptureNames.for_table(qualified))
            state = "created" if result.created_slot else "exists"
            lines.append(f"{qualified}: slot {result.names.slot} {state}")
    return lines
