"""What a quality rule's constraint may be: one boolean SQL expression over the row, calling only built-in
deterministic functions of an allow-list. Checked when conf/tables.yml is loaded, before any pipeline runs.

A rule runs inside the pipeline with the pipeline's rights, on plaintext rows: `java_method('java.lang.System',
'getenv', ...)` or `reflect(...)` would read the process's secrets, `raise_error(...)` would put any value
into an error text, a UDF or a subquery would run code or read other tables. None of that is a data-quality
rule. The check is lexical (string literals and quoted names are set aside, then every `name(` is a function
call); Spark parses the expression itself when the pipeline is defined (`bronze.rule_failures` names the rule
when that fails).
"""

from __future__ import annotations

import re

#: built-in functions a rule may call: deterministic, no side effects, nothing outside the row (the current
#: date and time are allowed: "not in the future" rules need them)
ALLOWED_FUNCTIONS = frozenset(
    [
        "abs",
        "ceil",
        "ceiling",
        "floor",
        "round",
        "bround",
        "sign",
        "signum",
        "mod",
        "pmod",
        "power",
        "pow",
        "sqrt",
        "exp",
        "ln",
        "log",
        "log10",
        "log2",
        "greatest",
        "least",
        "coalesce",
        "nvl",
        "nvl2",
        "nullif",
        "ifnull",
        "if",
        "isnull",
        "isnotnull",
        "isnan",
        "nanvl",
        "length",
        "char_length",
        "character_length",
        "octet_length",
        "bit_length",
        "trim",
        "ltrim",
        "rtrim",
        "btrim",
        "lower",
        "upper",
        "lcase",
        "ucase",
        "initcap",
        "substring",
        "substr",
        "left",
        "right",
        "concat",
        "concat_ws",
        "instr",
        "locate",
        "position",
        "startswith",
        "endswith",
        "contains",
        "replace",
        "translate",
        "lpad",
        "rpad",
        "regexp",
        "regexp_like",
        "rlike",
        "regexp_extract",
        "regexp_replace",
        "regexp_count",
        "split",
        "size",
        "cardinality",
        "array",
        "array_contains",
        "element_at",
        "cast",
        "try_cast",
        "to_date",
        "to_timestamp",
        "date",
        "timestamp",
        "date_add",
        "date_sub",
        "datediff",
        "add_months",
        "months_between",
        "year",
        "month",
        "day",
        "dayofmonth",
        "dayofweek",
        "dayofyear",
        "weekofyear",
        "quarter",
        "hour",
        "minute",
        "second",
        "make_date",
        "date_format",
        "date_trunc",
        "trunc",
        "last_day",
        "current_date",
        "current_timestamp",
        "now",
        "int",
        "bigint",
        "smallint",
        "tinyint",
        "double",
        "float",
        "decimal",
        "string",
        "boolean",
    ]
)
#: words that may stand before a parenthesis without calling a function
_KEYWORDS = frozenset(
    ["and", "or", "not", "in", "when", "then", "else", "case", "between", "is", "like", "ilike", "interval"]
)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*\(")
_SUBQUERY = re.compile(r"\b(select|from|exists|values|table)\b", re.IGNORECASE)


class RuleSqlError(ValueError):
    """The constraint is not an allowed rule expression; the message says why."""


def _without_literals(text: str) -> str:
    """The expression with string literals replaced by '' and quoted names by a plain name."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"`":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if text[end] == "\\" and ch != "`" else 1
            if end >= len(text):
                kind = "name" if ch == "`" else "string"
                raise RuleSqlError(f"unterminated quoted {kind} starting at character {i + 1}")
            out.append("_quoted_name" if ch == "`" else "''")
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def check_constraint(text: str) -> None:
    """Raise RuleSqlError when `text` is not one allowed boolean expression (see the module's text)."""
    bare = _without_literals(text)
    depth = 0
    for ch in bare:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise RuleSqlError("a ')' closes no '('")
    if depth:
        raise RuleSqlError(f"{depth} '(' not closed")
    if match := _SUBQUERY.search(bare):
        raise RuleSqlError(f"'{match.group(1)}': a rule judges its own row, no subquery or other table")
    for match in _CALL.finditer(bare):
        name = re.sub(r"\s+", "", match.group(1)).lower()
        if name in _KEYWORDS:
            continue
        if "." in name:
            raise RuleSqlError(f"'{name}' is not a built-in function (no UDFs or catalog functions in rules)")
        if name not in ALLOWED_FUNCTIONS:
            raise RuleSqlError(
                f"function '{name}' is not allowed in a rule (allowed: deterministic built-ins such as "
                f"trim, length, coalesce, regexp_like, to_date; see inventory_bronze.rule_sql)"
            )
