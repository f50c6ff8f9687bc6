"""`schema=` DDL strings as Databricks takes them: Spark's column list plus generated columns
(`c INT GENERATED ALWAYS AS (expr)`), column `PRIMARY KEY` and table constraints (`CONSTRAINT pk PRIMARY
KEY (id)`, `CONSTRAINT fk FOREIGN KEY (x) REFERENCES t(y)`). Generated columns become Delta generated
columns (Delta computes them on write); key constraints are informational, as on Databricks: recorded,
not enforced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pyspark.sql.types import StructType

from localdlt.errors import DefinitionError

_GENERATED = re.compile(r"\bGENERATED\s+ALWAYS\s+AS\s*\(", re.IGNORECASE)
_CONSTRAINT = re.compile(r"^\s*(CONSTRAINT\b|PRIMARY\s+KEY\b|FOREIGN\s+KEY\b)", re.IGNORECASE)
_COLUMN_KEY = re.compile(r"\s+PRIMARY\s+KEY\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class DeclaredSchema:
    struct: StructType
    generated: dict[str, str] = field(default_factory=dict)  # column -> SQL expression
    constraints: tuple[str, ...] = ()  # informational key constraints, as written


def declared(schema: Any, owner: str) -> DeclaredSchema:
    """The declared schema of dataset `owner` (a StructType or a DDL string); DefinitionError if invalid."""
    if isinstance(schema, StructType):
        return DeclaredSchema(schema)
    if not isinstance(schema, str):
        raise DefinitionError(
            f"schema of dataset '{owner}' must be a StructType or a DDL string, got {type(schema).__name__}."
        )
    try:
        return _parse(schema)
    except Exception as err:
        text = str(err).strip()
        first = text.splitlines()[0] if text else type(err).__name__
        raise DefinitionError(f"schema of dataset '{owner}' is not valid DDL: {first}") from err


def generated_columns(schema: Any) -> dict[str, str]:
    """Generated columns of a declared schema (none for a StructType or no schema)."""
    if not isinstance(schema, str):
        return {}
    try:
        return dict(_parse(schema).generated)
    except Exception:
        return {}


def constraints(schema: Any) -> list[str]:
    """Informational key constraints of a declared schema, as written (recorded, not enforced)."""
    if not isinstance(schema, str):
        return []
    try:
        return list(_parse(schema).constraints)
    except Exception:
        return []


@lru_cache(maxsize=256)
def _parse(ddl: str) -> DeclaredSchema:
    columns: list[str] = []
    generated: dict[str, str] = {}
    constraints: list[str] = []
    for part in _split_top_level(ddl):
        if not part.strip():
            raise ValueError(f"empty column definition in {ddl!r}")
        if _CONSTRAINT.match(part):
            constraints.append(" ".join(part.split()))
            continue
        match = _GENERATED.search(part)
        if match:
            end = _closing_paren(part, match.end() - 1)
            expr = part[match.end() : end].strip()
            if not expr:
                raise ValueError(f"empty GENERATED ALWAYS AS expression in {part.strip()!r}")
            part = part[: match.start()] + part[end + 1 :]
            generated[_column_name(part)] = expr
        if _COLUMN_KEY.search(part):
            constraints.append(f"PRIMARY KEY ({_column_name(part)})")
            part = _COLUMN_KEY.sub("", part)
        columns.append(part.strip())
    struct = StructType.fromDDL(", ".join(columns))
    names = {f.name for f in struct.fields}
    unknown = [c for c in generated if c not in names]
    if unknown:
        raise ValueError(f"generated column(s) {unknown} not found")
    return DeclaredSchema(struct, generated, tuple(constraints))


def _column_name(definition: str) -> str:
    text = definition.strip()
    if text.startswith("`"):
        end = text.index("`", 1)
        return text[1:end]
    return text.split()[0]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses, angle brackets (struct<...>) and quotes."""
    parts: list[str] = []
    parens, angles, quote, start = 0, 0, "", 0  # `<`/`>` count only outside parentheses (types)
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            parens += 1
        elif ch == ")":
            parens -= 1
        elif ch == "<" and not parens:
            angles += 1
        elif ch == ">" and not parens:
            angles -= 1
        elif ch == "," and not parens and not angles:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _closing_paren(text: str, open_at: int) -> int:
    depth, quote = 0, ""
    for i in range(open_at, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced parentheses in {text.strip()!r}")
