"""The pipeline a command works on: PATH... with --conf, or a bundle's pipeline resource."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from localdlt.cli.errors import UsageError
from localdlt.cli.options import conf_dict


@dataclass
class Source:
    paths: list[Path]
    conf: dict[str, str]
    name: str | None = None
    continuous: bool = False  # the bundle declares the pipeline continuous
    dependencies: tuple[str, ...] = ()
    key: str = ""


def resolve(args: argparse.Namespace) -> Source:
    """The sources and configuration the arguments name; `UsageError` for a wrong combination."""
    import localdlt.loader as loader

    conf = conf_dict(args.conf)
    if args.bundle is None:
        extra = [
            o for o, v in (("--pipeline", args.pipeline), ("--target", args.target), ("--var", args.var)) if v
        ]
        if extra:
            raise UsageError(f"{', '.join(extra)} go with --bundle DIR")
        if not args.paths:
            raise UsageError(
                "name the pipeline: PATH... (source files or folders) or --bundle DIR --pipeline KEY"
            )
        loader.source_files(args.paths)  # a missing path is named before Spark starts
        return Source([Path(p) for p in args.paths], conf)
    if args.paths:
        raise UsageError(f"give PATH ({args.paths[0]}) or --bundle, not both")
    if not args.pipeline:
        raise UsageError("--bundle needs --pipeline KEY (a key under resources.pipelines)")
    from localdlt import bundle as bundles

    target = args.target or default_target(args.bundle)
    loaded = bundles.load_bundle(args.bundle, target, variables=conf_dict(args.var))
    spec = loaded.pipeline(args.pipeline)
    if not spec.libraries:
        raise bundles.BundleError(
            f"{spec.source}: resources.pipelines.{spec.key}.libraries: matches no Python file"
        )
    return Source(
        list(spec.libraries),
        {**spec.configuration, **conf},
        name=spec.name,
        continuous=spec.continuous,
        dependencies=spec.dependencies,
        key=spec.key,
    )


def default_target(root: Path) -> str:
    """The target marked `default: true`, else the only one."""
    from localdlt.bundle import BundleError, merged_config

    targets = merged_config(root).get("targets") or {}
    marked = [name for name, t in targets.items() if isinstance(t, dict) and t.get("default")]
    if len(marked) == 1 or len(targets) == 1:
        return str((marked or list(targets))[0])
    raise BundleError(
        f"databricks.yml: targets: no default target; choose one with --target ({', '.join(targets) or 'none'})"
    )
