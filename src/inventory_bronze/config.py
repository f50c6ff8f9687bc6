"""The typed, validated configuration of the ten bronze tables (`conf/tables.yml`).

Loading fails before Spark starts, with the file, the table and the key at fault. The configuration is
checked against the source schema (`inventory_bronze.source.schema`): keys are the source's primary key,
every column named exists, and every PII column of the source has a treatment.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from inventory_bronze import rule_sql
from inventory_bronze.errors import ConfigError
from inventory_bronze.source import schema as source_schema

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]

# metadata columns every bronze table carries (the seed's list)
METADATA_COLUMNS = (
    "load_timestamp",
    "update_timestamp",
    "source_system",
    "record_status",
    "data_quality_score",
    "batch_id",
)


class Pattern(str, Enum):
    batch = "batch"
    full_refresh = "full_refresh"
    cdc = "cdc"
    micro_batch = "micro_batch"

    @property
    def uses_capture(self) -> bool:
        """Log-based capture (continuous for cdc, hourly for micro_batch)."""
        return self in (Pattern.cdc, Pattern.micro_batch)


class PiiTreatment(str, Enum):
    encrypt = "encrypt"
    encrypt_and_hash = "encrypt_and_hash"


class SchemaEvolution(str, Enum):
    """What a table does with a column its source added (Auto Loader's modes; inventory_bronze.schema_drift)."""

    add_new_columns = "add_new_columns"
    rescue = "rescue"
    fail = "fail"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    name: Identifier
    constraint: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    action: Literal["warn", "drop", "fail"]

    @field_validator("constraint")
    @classmethod
    def _no_statements(cls, value: str) -> str:
        # a constraint is one boolean expression: no statement separators or comments that could smuggle
        # in more SQL when it is placed into a query
        if ";" in value or "--" in value or "/*" in value:
            raise ValueError("a constraint must be a single SQL boolean expression (no ';', '--' or '/*')")
        return value

    @model_validator(mode="after")
    def _allowed_sql(self) -> Rule:
        try:
            rule_sql.check_constraint(self.constraint)
        except rule_sql.RuleSqlError as err:
            raise ValueError(f"rule '{self.name}': {err}: {self.constraint}") from None
        return self


class TableConfig(_Strict):
    pattern: Pattern
    schedule: Literal["continuous", "hourly", "daily", "weekly", "monthly"]
    keys: list[Identifier] = Field(min_length=1)
    sequence_by: Identifier
    cluster_by: list[Identifier] = Field(default_factory=list, max_length=4)
    rules: list[Rule] = Field(default_factory=list)
    pii: dict[Identifier, PiiTreatment] = Field(default_factory=dict)
    schema_evolution: SchemaEvolution = SchemaEvolution.add_new_columns

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique, repeated: {duplicates}")
        return rules


class Retry(_Strict):
    """Source connections retried with exponential backoff (inventory_bronze.source.retry): by default
    after 1 s, 2 s and 4 s, then a clear failure."""

    retries: int = Field(default=3, ge=0, le=10)
    first_delay_s: float = Field(default=1.0, ge=0, le=60)
    factor: float = Field(default=2.0, ge=1, le=10)


class Source(_Strict):
    system: Identifier
    database: Identifier
    schema_: Identifier = Field(alias="schema")
    retry: Retry = Field(default_factory=Retry)


class Bronze(_Strict):
    catalog: Identifier
    schema_: Identifier = Field(alias="schema")


class BronzeConfig(_Strict):
    source: Source
    bronze: Bronze
    tables: dict[Identifier, TableConfig]

    @cached_property
    def table_names(self) -> list[str]:
        return list(self.tables)

    @cached_property
    def capture_tables(self) -> list[str]:
        """The qualified source tables read through log-based capture (patterns cdc and micro_batch)."""
        return [f"{self.source.schema_}.{name}" for name, t in self.tables.items() if t.pattern.uses_capture]

    def table(self, name: str) -> TableConfig:
        try:
            return self.tables[name]
        except KeyError:
            raise ConfigError(
                f"No table '{name}' in the bronze configuration; tables: {', '.join(self.tables)}."
            ) from None


def target_name(table: str) -> str:
    return f"bz_{table}"


@lru_cache(maxsize=4)
def load_once(path: str | Path) -> BronzeConfig:
    """`load(path)`, once per process: what a pipeline's files and the tools share."""
    return load(path)


def load(path: str | Path, *, check_source: bool = True) -> BronzeConfig:
    """Read and validate the configuration; errors name the file, the table and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: the bronze configuration file does not exist.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        config = BronzeConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_url=False)
        )
        raise ConfigError(f"{path}: invalid configuration: {problems}") from None
    if check_source:
        check_against_source(config, path)
    return config


def check_against_source(config: BronzeConfig, path: Path | str = "<config>") -> None:
    problems: list[str] = []
    declared = {t.name for t in source_schema.TABLES}
    for name in sorted(declared - set(config.tables)):
        problems.append(f"tables: source table '{name}' has no bronze configuration")
    for name, table in config.tables.items():
        if name not in declared:
            problems.append(
                f"tables.{name}: not a table of the source schema ({', '.join(sorted(declared))})"
            )
            continue
        src = source_schema.table(name)
        columns = set(src.column_names)
        if tuple(table.keys) != tuple(src.primary_key):
            problems.append(
                f"tables.{name}.keys: {table.keys} is not the source primary key {list(src.primary_key)}"
            )
        capture_columns = {"_seq", "_lsn", "_commit_ts"} if table.pattern.uses_capture else set()
        if table.sequence_by not in columns | capture_columns:
            problems.append(f"tables.{name}.sequence_by: no column '{table.sequence_by}'")
        for col in table.cluster_by:
            if col not in columns:
                problems.append(f"tables.{name}.cluster_by: no column '{col}'")
        for col in table.pii:
            if col not in columns:
                problems.append(f"tables.{name}.pii: no column '{col}'")
        for col in src.pii_columns:
            if col not in table.pii:
                problems.append(
                    f"tables.{name}.pii: source PII column '{col}' has no treatment (encrypt ...)"
                )
        for rule in table.rules:
            for word in re.findall(r"\b[A-Z][A-Za-z0-9]*_[A-Za-z0-9_]+\b", rule.constraint):
                if word not in columns:
                    problems.append(f"tables.{name}.rules.{rule.name}: no column '{word}' in {name}")
    if problems:
        raise ConfigError(f"{path}: configuration does not match the source schema: " + "; ".join(problems))
