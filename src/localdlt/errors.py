"""One exception hierarchy for the local runtime. Every message names the dataset, flow, file or
setting at fault and, where it can, says what to do."""

from __future__ import annotations


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
