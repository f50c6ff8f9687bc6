"""The `spark` global of pipeline files. It forwards to the session of the flow running on the current
thread, so a flow's `spark_conf` applies to its own query only, even while other flows run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession


class SessionProxy:
    def __init__(self, default: SparkSession) -> None:
        object.__setattr__(self, "_default", default)
        object.__setattr__(self, "_local", threading.local())

    @property
    def current(self) -> SparkSession:
        return getattr(self._local, "session", None) or self._default

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)

    @property
    def readStream(self) -> Any:  # noqa: N802 - Spark's name; format("cloudFiles") is Auto Loader
        from localdlt.autoloader import stream_reader

        return stream_reader(self.current)

    def __repr__(self) -> str:
        return f"<localdlt spark session proxy for {self.current!r}>"

    @contextmanager
    def using(self, session: SparkSession) -> Iterator[SparkSession]:
        previous = getattr(self._local, "session", None)
        self._local.session = session
        try:
            yield session
        finally:
            self._local.session = previous


def session_with_conf(base: SparkSession, conf: dict[str, str]) -> SparkSession:
    """A session of its own (same SparkContext and tables) with the pipeline's configuration plus `conf`."""
    session = base.newSession()
    for key, value in base.conf.getAll.items():
        if base.conf.isModifiable(key) or not key.startswith("spark."):
            session.conf.set(key, value)
    for key, value in conf.items():
        session.conf.set(key, value)
    return session
