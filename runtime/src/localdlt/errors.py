"""One exception hierarchy for the local runtime. Every message names the dataset, flow, file or
setting at fault and, where it can, says what to do."""

from __future__ import annotations

import re
from collections.abc import Iterator


class PipelineError(Exception):
    """Base class of every error the local runtime raises on purpose."""


class DefinitionError(PipelineError):
    """The pipeline's source is wrong: found while loading or analysing, before anything is written."""


class PipelineLoadError(DefinitionError):
    """A pipeline source file could not be imported."""


class UnsupportedParameterError(DefinitionError):
    """A decorator or function got a parameter value the runtime cannot honour."""


class FlowError(PipelineError):
    """A flow failed while it ran; the update continues with independent flows and ends FAILED."""

    def __init__(self, flow: str, message: str) -> None:
        super().__init__(message)
        self.flow = flow


class ExpectationViolation(FlowError):
    """An `expect_or_fail` expectation saw a row that does not satisfy it."""

    def __init__(self, flow: str, dataset: str, expectation: str, constraint: str, example: str) -> None:
        self.dataset = dataset
        self.expectation = expectation
        self.constraint = constraint
        self.example = example
        super().__init__(
            flow,
            f"Flow '{flow}' failed: expectation '{expectation}' ({constraint}) on dataset '{dataset}' "
            f"was violated. Example failing row: {example}. Fix the source data, or change the "
            f"expectation to expect/expect_or_drop.",
        )


class CdcError(FlowError):
    """An AUTO CDC flow met data it must not apply (e.g. a NULL key or sequence value)."""


class UpdateFailed(PipelineError):
    """The update ended FAILED; `errors` holds each failed flow's error."""

    def __init__(self, update_id: str, errors: dict[str, BaseException]) -> None:
        self.update_id = update_id
        self.errors = errors
        lines = "\n".join(f"  - {flow}: {err}" for flow, err in errors.items())
        super().__init__(f"Update {update_id} FAILED; {len(errors)} flow(s) failed:\n{lines}")


_PY4J_CALL = "An error occurred while calling"
_TRACEBACK = "Traceback (most recent call last):"
_SPARK_RESUMES = ("SQLSTATE", "=== ", "JVM stacktrace", "at ", "Caused by")
_PYTHON_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit): ")
_JAVA_ERROR_LINE = re.compile(r"^(?:Caused by: |: )?((?:[a-z]\w*\.)+[A-Z]\w*(?:Exception|Error): .*)")


def error_summary(err: BaseException) -> str:
    """One line saying what went wrong: a Py4J error's text starts with the uninformative
    "An error occurred while calling o123.save."; the Python error of a failed UDF or data source (its
    traceback's last line) and Spark's own first error line say more."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    if isinstance(err, PipelineError):
        return text.splitlines()[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines[0].endswith(_TRACEBACK):  # Spark's line, then the Python traceback of a data source or UDF
        python = _python_error(text)
        if python:
            where = lines[0][: -len(_TRACEBACK)].rstrip(": ")
            where = where[where.rfind("[") :] if "[" in where else where
            return f"{python} ({where})"
    if not (lines[0].startswith(_PY4J_CALL) or "thrown from the Python worker" in lines[0]):
        return f"{type(err).__name__}: {lines[0]}"
    java = [m.group(1) for m in map(_JAVA_ERROR_LINE.match, lines[1:]) if m]
    python = [
        line for line in lines[1:] if _PYTHON_ERROR_LINE.match(line) and not _JAVA_ERROR_LINE.match(line)
    ]
    spark = re.sub(r"^(?:[a-z]\w*\.)+", "", java[0]) if java else ""
    if python:
        return python[-1] + (f" ({spark[:300]})" if spark else "")
    return re.sub(r"^(?:[a-z]\w*\.)+", "", java[-1]) if java else lines[0]


def _python_error(text: str) -> str | None:
    """The error a Python traceback in `text` ends with: `Class: message` (module path left out) with the
    message's further lines, up to where Spark's own text resumes; None without a traceback."""
    raw = text.splitlines()
    heads = [i for i, line in enumerate(raw) if line.rstrip().endswith(_TRACEBACK)]
    if not heads:
        return None
    i = heads[-1] + 1
    while i < len(raw) and (raw[i].startswith("  ") or not raw[i].strip()):  # frames and their code lines
        i += 1
    if i >= len(raw):
        return None
    block = [re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))", "", raw[i].strip())]
    for line in raw[i + 1 :]:
        if line.strip().startswith(_SPARK_RESUMES) or _JAVA_ERROR_LINE.match(line.strip()):
            break
        block.append(line.rstrip())
    return re.sub(r"(?:\s*SQLSTATE: \w+)+$", "", "\n".join(block).strip()).strip() or None


def causes(err: BaseException) -> Iterator[BaseException]:
    """The error, then its causes (`__cause__`, else `__context__`), without looping."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
