"""This project's Databricks Asset Bundle: the generic reading is `localdlt.bundle` (includes, targets,
variables, libraries); here are what only this project has: the bronze configuration setting of its
pipelines, the bronze tables each covers, and the rules its jobs follow.

`load_bundle(root, target)` is `localdlt.bundle.load_bundle` whose pipelines are this module's
`PipelineSpec` (with `config_path` and `tables()`); `check_references(bundle)` adds this project's checks
to the generic ones (see its docstring).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import localdlt.bundle as generic
from inventory_bronze import config
from localdlt.bundle import (  # noqa: F401  (the names the product's callers import from here)
    Bundle,
    BundleError,
    Path_,
    bundle_files,
    library_files,
    merged_config,
)

CONFIG_PATH_SETTING = "inventory.config_path"  # the pipeline setting naming conf/tables.yml


@lru_cache(maxsize=4)
def bronze_tables(config_path: str) -> tuple[str, ...]:
    """The bronze tables (`bz_<table>`) the configuration at `config_path` declares; a pipeline covers one
    when one of its library files is `bz_<table>.py`."""
    return tuple(config.target_name(t) for t in config.load(config_path, check_source=False).tables)


HOURLY_JOB = "inventory_bronze_hourly"
TIMEZONE = "Asia/Kolkata"


@dataclass(frozen=True)
class PipelineSpec(generic.PipelineSpec):
    """One `resources.pipelines.<key>` entry, resolved for one target, with this project's settings."""

    @property
    def config_path(self) -> str:
        """The bronze configuration the pipeline runs with (its setting `inventory.config_path`)."""
        return self.configuration.get(CONFIG_PATH_SETTING, "")

    def tables(self) -> list[str]:
        """The bronze tables this pipeline's library files define (`bz_<table>.py` file names)."""
        known = bronze_tables(self.config_path) if self.config_path else ()
        return sorted({p.stem for p in self.libraries if p.stem in known})


def load_bundle(
    root: Path,
    target: str = "dev",
    *,
    variables: Mapping[str, Any] | None = None,
    user: str | None = None,
    strict: bool = True,
) -> Bundle:
    """`localdlt.bundle.load_bundle` with this project's PipelineSpec."""
    return generic.load_bundle(
        root, target, variables=variables, user=user, strict=strict, spec_type=PipelineSpec
    )


def check_references(bundle: Bundle) -> list[str]:
    """Problems the bundle JSON schema cannot see, over every target of the bundle: the generic ones
    (`localdlt.bundle.check_references`: variables, resource references, library globs) and this project's:

    * every pipeline publishes to a catalog and schema and its event log to a named table, and names its
      bronze configuration;
    * each of the ten bronze tables is covered (a `bz_<table>.py` file under a pipeline's libraries) by
      exactly one pipeline;
    * the job `inventory_bronze_hourly` is scheduled every hour in Asia/Kolkata and updates every triggered
      pipeline; every job schedule is in Asia/Kolkata; pipeline tasks start only triggered pipelines, and
      their table selections name tables of that pipeline.

    A problem found in every target is reported once; otherwise it names its targets."""
    return generic.check_references(bundle, extra=_check_target)


def _check_target(bundle: Bundle) -> list[str]:
    return [
        *_check_pipelines(bundle),
        *_check_coverage(bundle),
        *_check_jobs(bundle),
    ]


def _check_pipelines(bundle: Bundle) -> list[str]:
    problems = []
    for key, spec in bundle.pipelines.items():
        where = bundle.where(("resources", "pipelines", key))
        if not (spec.catalog and spec.schema):
            problems.append(f"{where}: set catalog and schema: the tables are published to Unity Catalog")
        if not spec.event_log_name:
            problems.append(
                f"{where}.event_log.name: publish the event log to a named table (the audit reads it)"
            )
        if not spec.config_path or not Path(spec.config_path).is_file():
            problems.append(
                f"{where}.configuration.{CONFIG_PATH_SETTING}: name the bronze configuration "
                f"(${{workspace.file_path}}/conf/tables.yml){'; ' + spec.config_path + ' is no file' if spec.config_path else ''}"
            )
    return problems


def _check_coverage(bundle: Bundle) -> list[str]:
    paths = {spec.config_path for spec in bundle.pipelines.values() if spec.config_path}
    owners: dict[str, list[str]] = {table: [] for path in sorted(paths) for table in bronze_tables(path)}
    for spec in bundle.pipelines.values():
        for table in spec.tables():
            owners[table].append(spec.key)
    problems = []
    for table, keys in owners.items():
        if not keys:
            problems.append(f"resources.pipelines: table {table} is in no pipeline: add a {table}.py to one")
        elif len(keys) > 1:
            problems.append(
                f"resources.pipelines: table {table} is in {len(keys)} pipelines ({', '.join(keys)}): keep "
                "its file under one pipeline's libraries"
            )
    return problems


def is_hourly(quartz: str) -> bool:
    """True for a Quartz cron expression that fires once an hour, every hour, every day."""
    fields = quartz.split()
    if len(fields) not in (6, 7):
        return False
    sec, minute, hour, dom, month, dow = fields[:6]
    year = fields[6] if len(fields) == 7 else "*"
    return (
        sec.isdigit()
        and minute.isdigit()
        and hour in ("*", "*/1", "0/1")
        and dom in ("*", "?")
        and month == "*"
        and dow in ("*", "?")
        and year == "*"
    )


def _check_jobs(bundle: Bundle) -> list[str]:
    problems = []
    jobs = bundle.resources.get("jobs", {})
    for key, job in jobs.items():
        schedule = (job or {}).get("schedule")
        path = ("resources", "jobs", key)
        if schedule and schedule.get("timezone_id") != TIMEZONE:
            problems.append(f"{bundle.where((*path, 'schedule'))}.timezone_id: must be {TIMEZONE}")
        for i, task in enumerate((job or {}).get("tasks") or []):
            if isinstance(task, Mapping) and isinstance(task.get("pipeline_task"), Mapping):
                problems += _check_pipeline_task(bundle, (*path, "tasks", f"[{i}]"), task["pipeline_task"])
    hourly = jobs.get(HOURLY_JOB)
    if hourly is None:
        return [*problems, f"resources.jobs: no job '{HOURLY_JOB}': the seed's hourly schedule needs it"]
    where = bundle.where(("resources", "jobs", HOURLY_JOB, "schedule"))
    schedule = hourly.get("schedule") or {}
    if not is_hourly(str(schedule.get("quartz_cron_expression", ""))):
        problems.append(f"{where}.quartz_cron_expression: must fire every hour, e.g. '0 0 * * * ?'")
    started = {
        _pipeline_key(str(t["pipeline_task"].get("pipeline_id", "")))
        for t in hourly.get("tasks") or []
        if isinstance(t, Mapping) and isinstance(t.get("pipeline_task"), Mapping)
    }
    for key, spec in bundle.pipelines.items():
        if not spec.continuous and key not in started:
            problems.append(
                f"{bundle.where(('resources', 'jobs', HOURLY_JOB, 'tasks'))}: no task updates pipeline {key}"
            )
    return problems


def _pipeline_key(pipeline_id: str) -> str | None:
    match = re.fullmatch(r"\$\{resources\.pipelines\.([^.}]+)\.id\}", pipeline_id)
    return match.group(1) if match else None


def _check_pipeline_task(bundle: Bundle, path: Path_, task: Mapping[str, Any]) -> list[str]:
    where = bundle.where((*path, "pipeline_task"))
    key = _pipeline_key(str(task.get("pipeline_id", "")))
    if key is None:
        return [
            f"{where}.pipeline_id: use ${{resources.pipelines.<key>.id}} so the task follows the deployment"
        ]
    spec = bundle.pipelines.get(key)
    if spec is None:
        return []  # reported by the resource reference check
    if spec.continuous:
        return [f"{where}: pipeline {key} is continuous; a job task can only start a triggered pipeline"]
    problems = []
    for selection in ("refresh_selection", "full_refresh_selection"):
        for table in task.get(selection) or []:
            if spec.libraries and table not in {p.stem for p in spec.libraries}:
                problems.append(
                    f"{where}.{selection}: {table} is not a table of pipeline {key} (no {table}.py)"
                )
    return problems
