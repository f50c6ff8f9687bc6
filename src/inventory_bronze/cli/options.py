"""Small parsers shared by sub-commands."""

from __future__ import annotations

import argparse


def parse_conf(entries: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings to a dict; a malformed entry is an argparse error naming it."""
    conf: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"--conf {entry!r}: expected KEY=VALUE")
        conf[key.strip()] = value
    return conf
