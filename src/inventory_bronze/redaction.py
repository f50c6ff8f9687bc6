"""Row values out of error texts: the parts of Spark's and PostgreSQL's errors that quote the value a row
failed on (a cast, a parse), which may be PII. The audit derivation applies the patterns in Spark SQL (on
Databricks and locally: `bz_audit_log.error_message` and the report), local runs apply `redact` to the
event log and the console."""

from __future__ import annotations

import re

#: (Java/Python regular expression, replacement in Spark's `$n` syntax)
VALUE_PATTERNS = (
    # CAST_INVALID_INPUT / CAST_OVERFLOW: The value '...' of the type "STRING" cannot be cast ...
    (r"(?i)(the value )('(?:[^'\\]|\\.)*'|\S+)( of the type)", "$1<redacted>$3"),
    # CANNOT_PARSE_TIMESTAMP and java.time: Text '...' could not be parsed
    (r"(?i)(text )('(?:[^'\\]|\\.)*')( could not be parsed)", "$1<redacted>$3"),
    # PostgreSQL: invalid input syntax for type integer: "..."
    (r"(?i)(invalid input syntax for type [a-z ]+: )(\"[^\"]*\")", "$1<redacted>"),
)
_PYTHON = [(re.compile(p), re.sub(r"\$(\d)", r"\\g<\1>", r)) for p, r in VALUE_PATTERNS]


def redact(text: str) -> str:
    """`text` without the row values its errors quote (VALUE_PATTERNS)."""
    for pattern, replacement in _PYTHON:
        text = pattern.sub(replacement, text)
    return text
