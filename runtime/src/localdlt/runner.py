"""`run_update`: load pipeline files and run one update, with the event log around it."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

import localdlt.loader as loader
from localdlt.analysis import Analyzer
from localdlt.errors import PipelineError
from localdlt.eventlog import EventLog
from localdlt.executor import FLUSH_EVERY_SECONDS, Update
from localdlt.graph import PipelineGraph
from localdlt.livetables import live_tables
from localdlt.progress import ConsoleProgress
from localdlt.session import get_spark
from localdlt.sessionproxy import SessionProxy
from localdlt.storage import Storage
from localdlt.tablesetup import TableSetup
from localdlt.update_types import UpdateOptions, UpdateResult

UPDATE_ID_CONF = "pipelines.updateId"
STORAGE_CONF = "pipelines.storage"  # the pipeline's storage folder (Databricks' setting `storage`)


#: A change made to the loaded pipeline before it is analysed and run: it gets the graph the pipeline files
#: defined and returns the graph to run (the same object changed, or another). It may replace datasets and
#: flows (flows' query functions run under the runtime's reader, `localdlt.context`), remove them, or raise
#: a `DefinitionError`, which fails the update with that message. Names the files defined keep resolving
#: in `spark.read.table` even when an edit removed them.
GraphEdit = Callable[[PipelineGraph], PipelineGraph]


def pipeline_id_for(storage: Storage, conf: Mapping[str, str]) -> str:
    return conf.get("pipelines.id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"localdlt:{storage.root}"))


@contextmanager
def _exclusive(storage: Storage) -> Iterator[None]:
    lock_path = storage.root / "system" / "update.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError(
                f"Another update is running on pipeline storage {storage.root}; wait for it or stop it."
            ) from None
        yield


def _mark_interrupted(storage: Storage, events: EventLog) -> None:
    """An update whose process died (kill -9, power loss) left its marker: record it as FAILED."""
    marker = storage.root / "system" / "running.json"
    if not marker.exists():
        return
    try:
        previous = json.loads(marker.read_text())
    except ValueError:
        previous = {}
    update_id = previous.get("update_id")
    if update_id:
        events.emit(
            "update_progress",
            {"state": "FAILED", "interrupted": True},
            f"Update {update_id} was interrupted: its process (pid {previous.get('pid')}) ended before "
            f"the update finished. Work it committed is kept; streams resume from their checkpoints.",
            level="ERROR",
            update_id=update_id,
        )
        # committed before the marker is overwritten: a kill during this update's start must not lose it
        events.flush()


@contextmanager
def _stop_on_sigint(update: Update) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if update.stop_event.is_set():
            raise KeyboardInterrupt
        update.stop_event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_update(
    paths: Iterable[str | Path],
    storage: str | Path,
    conf: Mapping[str, str] | None = None,
    options: UpdateOptions | None = None,
    pipeline_name: str | None = None,
    spark: SparkSession | None = None,
    progress: ConsoleProgress | None = None,
    redact: Callable[[str], str] | None = None,
    edit_graph: GraphEdit | None = None,
) -> UpdateResult:
    """Run one update of the pipeline made of `paths` (files or folders) on `storage`.

    Never raises for a failing pipeline: the result's `state` is FAILED and `error`/`flows` say why.
    `redact` is applied to the error texts the event log records and the progress prints (e.g. to keep
    row values out of them). `edit_graph` changes the loaded pipeline before it is analysed (see
    `GraphEdit`; `localdlt.subset.Subset` runs some datasets only, on rows given from outside).
    """
    options = options or UpdateOptions()
    conf = {str(k): str(v) for k, v in (conf or {}).items()}
    store = Storage.at(storage)
    spark = spark or get_spark()
    progress = progress or ConsoleProgress()
    pipeline_id = pipeline_id_for(store, conf)
    name = pipeline_name or conf.get("pipelines.name") or store.root.name
    update_id = str(uuid.uuid4())
    # the pipeline's configuration, plus its id, its storage and (a localdlt extension) the running update's id
    settings = {**conf, "pipelines.id": pipeline_id, UPDATE_ID_CONF: update_id, STORAGE_CONF: str(store.root)}
    with configured(spark, settings):
        result = _run(
            paths, store, conf, options, name, spark, progress, redact, pipeline_id, update_id, edit_graph
        )
    progress.summary(result)
    return result


@contextmanager
def configured(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """The pipeline's settings in the session for the update, then as they were: on Databricks each pipeline
    has a session of its own, so one pipeline's configuration never reaches another's."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _run(
    paths: Iterable[str | Path],
    store: Storage,
    conf: dict[str, str],
    options: UpdateOptions,
    name: str,
    spark: SparkSession,
    progress: ConsoleProgress,
    redact: Callable[[str], str] | None,
    pipeline_id: str,
    update_id: str,
    edit_graph: GraphEdit | None = None,
) -> UpdateResult:
    started = time.monotonic()
    with _exclusive(store):
        events = EventLog(spark, store.event_log_path, pipeline_id, name, update_id)
        if redact is not None:
            events.redact = progress.redact = redact
        _mark_interrupted(store, events)
        marker = store.root / "system" / "running.json"
        marker.write_text(json.dumps({"update_id": update_id, "pid": os.getpid()}))
        selection = options.full_refresh_tables or []
        events.emit(
            "create_update",
            {
                "cause": "USER_ACTION",
                "full_refresh": options.full_refresh,
                "full_refresh_selection": selection,
                "continuous": options.continuous,
                "config": conf,
            },
            f"Update {update_id[:8]} started by USER_ACTION.",
        )
        events.emit("update_progress", {"state": "INITIALIZING"}, f"Update {update_id[:8]} is INITIALIZING.")
        progress.line(f"update {update_id} of pipeline '{name}' ({store.root})")
        # The log shows the update as soon as it starts, and the process's first Delta commit (seconds of JVM
        # warm-up) overlaps the loading and analysis of the pipeline instead of following its flows.
        events.flush_in_background()

        result = UpdateResult(
            update_id=update_id, pipeline_id=pipeline_id, state="FAILED", storage=str(store.root)
        )
        update: Update | None = None
        first_flush: threading.Timer | None = None
        proxy = SessionProxy(spark)
        try:
            graph = loader.load(paths, proxy)
            # `spark.read.table(name)` resolves to the pipeline's dataset for every name the files define,
            # also one an edit removed (which reads it then, e.g. to refuse the read with a clear error)
            defined = set(graph.datasets)
            if edit_graph is not None:
                graph = edit_graph(graph)
            with live_tables(defined | set(graph.datasets)):
                analysis = Analyzer(spark, graph, existing_schema(spark, store, graph), proxy).run()
                update = Update(spark, proxy, graph, analysis, store, events, conf, options, progress.on_flow)
                result.flows = update.outcomes
                update.emit_definitions()
                _state(events, update_id, "SETTING_UP_TABLES")
                TableSetup(spark, graph, analysis, store, events, options).run()
                _state(events, update_id, "RUNNING")
                first_flush = events.flush_after(FLUSH_EVERY_SECONDS)  # readable while a long update runs
                for outcome in update.outcomes.values():
                    progress.on_flow(outcome)
                with _stop_on_sigint(update):
                    update.run_flows()
            failed = {n: o.error for n, o in update.outcomes.items() if o.status == "FAILED" and o.error}
            result.state = "FAILED" if failed else "COMPLETED"
            if failed:
                from localdlt.errors import UpdateFailed

                result.error = UpdateFailed(update_id, failed)
        except PipelineError as err:
            result.error = err
        except Exception as err:  # anything unexpected still ends the update properly
            result.error = err
        result.seconds = time.monotonic() - started
        if first_flush is not None:
            first_flush.cancel()
        events.emit(
            "update_progress",
            {"state": result.state},
            f"Update {update_id[:8]} is {result.state}."
            + (f" {result.error}" if result.error is not None else ""),
            level="ERROR" if result.state == "FAILED" else "INFO",
            error=result.error,
        )
        events.flush()
        if _did_work(result):  # the JVM is warm: the log's checkpoint is cheap now, not in an idle update
            try:
                events.checkpoint_if_due()
            except Exception as err:  # an optimization: the events are committed already
                progress.line(f"warning: the event log was not checkpointed ({err}); a later update will")
        marker.unlink(missing_ok=True)
    return result


def _did_work(result: UpdateResult) -> bool:
    """Whether some flow ran (rather than finding nothing to do)."""
    return any(o.no_op_reason is None and o.status in ("COMPLETED", "FAILED") for o in result.flows.values())


def existing_schema(spark: SparkSession, store: Storage, graph: Any) -> Any:
    def lookup(name: str) -> Any:
        path = store.dataset_path(graph.datasets[name])
        if not (Path(path) / "_delta_log").is_dir():
            return None
        return spark.read.format("delta").load(path).schema

    return lookup


def _state(events: EventLog, update_id: str, state: str) -> None:
    events.emit("update_progress", {"state": state}, f"Update {update_id[:8]} is {state}.")
