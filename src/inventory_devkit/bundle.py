"""The Databricks Asset Bundle (`databricks.yml` + its included `resources/*.yml`) as typed data.

The local runner takes each pipeline's libraries and configuration from here, so a local run and a
deployed run read the same files and cannot drift. `load_bundle(root, target)` reads the bundle the way
`databricks bundle` does for the parts this project uses:

* `include` globs are read relative to the bundle root; a glob that matches no file is an error;
* the target's `resources`, `workspace`, `artifacts`, `presets`, ... are merged over the top level
  (mappings merge key by key; a list in a target replaces the list it overrides);
* `${var.X}` takes, in order: the `variables` argument, the target's value, the declared `default`;
* `${bundle.name}`, `${bundle.target}`; `${workspace.file_path}` and `${workspace.root_path}` are the bundle
  root locally; `${workspace.current_user.userName}` / `.short_name` are the local user;
* `${resources.*}`, `${artifacts.*}` and other `${workspace.*}` values only exist after a deployment: they
  stay as written (`check_references` checks that they point at something real);
* relative library paths are relative to the file that declares them, as in the Databricks CLI.

`check_references(bundle)` returns the problems the official JSON schema cannot see (see its docstring).

Long because: it reproduces the Databricks CLI's reading of a bundle (includes, targets, variables,
libraries) and the checks the bundle's JSON schema cannot do, which need that reading.
"""

from __future__ import annotations

import copy
import getpass
import glob
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from inventory_bronze import config

CONFIG_PATH_SETTING = "inventory.config_path"  # the pipeline setting naming conf/tables.yml


@lru_cache(maxsize=4)
def bronze_tables(config_path: str) -> tuple[str, ...]:
    """The bronze tables (`bz_<table>`) the configuration at `config_path` declares; a pipeline covers one
    when one of its library files is `bz_<table>.py`."""
    return tuple(config.target_name(t) for t in config.load(config_path, check_source=False).tables)


HOURLY_JOB = "inventory_bronze_hourly"
TIMEZONE = "Asia/Kolkata"

_REF = re.compile(r"\$\{([^{}]*)\}")
_ROOT_FILE = "databricks.yml"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# top-level sections a target may override
_TARGET_SECTIONS = (
    "bundle",
    "workspace",
    "artifacts",
    "presets",
    "resources",
    "sync",
    "permissions",
    "run_as",
)

Path_ = tuple[str, ...]


class BundleError(ValueError):
    """The bundle cannot be read or resolved; the message names the file and key to fix."""


@dataclass(frozen=True)
class PipelineSpec:
    """One `resources.pipelines.<key>` entry, resolved for one target."""

    key: str
    name: str
    catalog: str
    schema: str
    continuous: bool
    development: bool
    libraries: list[Path]  # the .py files the library globs/paths match, sorted
    configuration: dict[str, str]  # what pipeline code reads with spark.conf.get
    event_log_name: str  # table name of the published event log
    event_log_table: str = ""  # catalog.schema.name of the published event log
    source: Path | None = None  # the resource file that declares the pipeline
    dependencies: tuple[str, ...] = ()  # `environment.dependencies`: pip requirement lines

    @property
    def config_path(self) -> str:
        """The bronze configuration the pipeline runs with (its setting `inventory.config_path`)."""
        return self.configuration.get(CONFIG_PATH_SETTING, "")

    def tables(self) -> list[str]:
        """The bronze tables this pipeline's library files define (`bz_<table>.py` file names)."""
        known = bronze_tables(self.config_path) if self.config_path else ()
        return sorted({p.stem for p in self.libraries if p.stem in known})


@dataclass(frozen=True)
class Bundle:
    """A bundle resolved for one target."""

    root: Path
    name: str
    target: str
    targets: tuple[str, ...]
    mode: str | None
    variables: dict[str, Any]
    pipelines: dict[str, PipelineSpec]
    resources: dict[str, dict[str, dict[str, Any]]]  # kind -> key -> resolved settings
    artifacts: dict[str, dict[str, Any]]
    origins: dict[Path_, Path]  # config key path -> the file that set it
    problems: tuple[str, ...] = ()  # only with strict=False: what load_bundle would have raised
    user: str = ""  # the local user standing for ${workspace.current_user.userName}
    overrides: tuple[tuple[str, Any], ...] = ()  # the `variables` argument, to reload other targets

    def pipeline(self, key: str) -> PipelineSpec:
        try:
            return self.pipelines[key]
        except KeyError:
            raise BundleError(
                f"{_ROOT_FILE}: no pipeline '{key}' in resources.pipelines; "
                f"pipelines are: {', '.join(sorted(self.pipelines)) or 'none'}"
            ) from None

    def file_of(self, path: Path_) -> Path:
        """The file that set the config value at `path` (or the closest enclosing key)."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.origins:
                return self.origins[path[:n]]
        return self.root / _ROOT_FILE

    def where(self, path: Path_) -> str:
        """`file: dotted.key` for messages."""
        return f"{_rel(self.file_of(path), self.root)}: {_dotted(path)}"


# --- loading ----------------------------------------------------------------------------------------


def load_bundle(
    root: Path,
    target: str = "dev",
    *,
    variables: Mapping[str, Any] | None = None,
    user: str | None = None,
    strict: bool = True,
) -> Bundle:
    """Read `root/databricks.yml` and its includes, resolved for `target`.

    `variables` overrides variable values (as `databricks bundle --var` does); `user` is the local
    user name standing for `${workspace.current_user.userName}` (default: the login name). With
    `strict=False` resolution problems are returned in `Bundle.problems` instead of raised, and unresolved
    `${...}` text is left in place."""
    root = Path(root).resolve()
    problems: list[str] = []
    config, origins = _read_config(root, problems)
    targets = config.get("targets") or {}
    if not isinstance(targets, Mapping) or target not in targets:
        raise BundleError(
            f"{_ROOT_FILE}: targets: no target '{target}'; targets are: {', '.join(targets) or 'none'}"
        )
    target_cfg = targets[target] or {}
    target_file = origins.get(("targets", target), root / _ROOT_FILE)
    for section in _TARGET_SECTIONS:
        if isinstance(target_cfg.get(section), Mapping):
            base = config.setdefault(section, {})
            _merge(base, target_cfg[section], target_file, (section,), origins, problems, override=True)

    user_name = user or getpass.getuser()
    context = _Context(
        root=root,
        bundle_name=str((config.get("bundle") or {}).get("name", "")),
        target=target,
        user_name=user_name,
        short_name=re.sub(r"[^a-z0-9]", "_", user_name.split("@")[0].lower()),
    )
    _declare_variables(config, target, target_cfg, dict(variables or {}), origins, root, context, problems)

    resolved: dict[str, Any] = {}
    for section in ("bundle", "workspace", "artifacts", "presets", "resources"):
        if section in config:
            resolved[section] = context.resolve(config[section], (section,), origins, problems)
    for name, raw in context.declared.items():
        if name not in context.values and raw is not _UNSET:  # unused variables: resolve them too
            context.resolve(f"${{var.{name}}}", ("variables", name), origins, problems)
    resources = {
        kind: dict(entries) for kind, entries in (resolved.get("resources") or {}).items() if entries
    }
    bundle = Bundle(
        root=root,
        name=context.bundle_name,
        target=target,
        targets=tuple(targets),
        mode=target_cfg.get("mode"),
        variables={name: context.values.get(name) for name in context.declared},
        pipelines={},
        resources=resources,
        artifacts=dict(resolved.get("artifacts") or {}),
        origins=origins,
        user=user_name,
        overrides=tuple(sorted((variables or {}).items())),
    )
    presets = resolved.get("presets") or {}
    pipelines = {
        key: _pipeline_spec(bundle, key, settings or {}, presets, problems)
        for key, settings in resources.get("pipelines", {}).items()
    }
    problems = list(dict.fromkeys(problems))
    if strict and problems:
        raise BundleError("the bundle has problems:\n  " + "\n  ".join(problems))
    return replace(bundle, pipelines=pipelines, problems=tuple(problems))


def bundle_files(root: Path) -> list[Path]:
    """databricks.yml and the files its `include` globs match, in reading order."""
    root = Path(root).resolve()
    main = root / _ROOT_FILE
    includes = _read_yaml(main, root).get("include") or [] if main.is_file() else []
    found = [main]
    for pattern in includes:
        found += sorted(
            Path(p).resolve() for p in glob.glob(str(root / pattern), recursive=True) if Path(p).is_file()
        )
    return list(dict.fromkeys(found))


def merged_config(root: Path) -> dict[str, Any]:
    """databricks.yml with its includes merged, before any target is applied or `${...}` resolved: the
    document `databricks bundle validate` checks against the bundle JSON schema."""
    problems: list[str] = []
    config, _ = _read_config(Path(root).resolve(), problems)
    if problems:
        raise BundleError("the bundle has problems:\n  " + "\n  ".join(problems))
    return config


def _read_config(root: Path, problems: list[str]) -> tuple[dict[str, Any], dict[Path_, Path]]:
    main = root / _ROOT_FILE
    if not main.is_file():
        raise BundleError(f"{main}: no bundle configuration here (databricks.yml is missing)")
    config: dict[str, Any] = {}
    origins: dict[Path_, Path] = {}
    top = _read_yaml(main, root)
    _merge(config, top, main, (), origins, problems, override=False)
    includes = top.get("include") or []
    if not isinstance(includes, list):
        raise BundleError(f"{_ROOT_FILE}: include: must be a list of path globs, not {includes!r}")
    for i, pattern in enumerate(includes):
        matches = sorted(Path(p) for p in glob.glob(str(root / pattern), recursive=True) if Path(p).is_file())
        if not matches:
            problems.append(
                f"{_ROOT_FILE}: include[{i}]: '{pattern}' matches no file under {root}: fix the glob or add the file"
            )
        for file in matches:
            if file.resolve() != main:
                doc = _read_yaml(file, root)
                if "include" in doc:
                    problems.append(f"{_rel(file, root)}: include: only databricks.yml may include files")
                _merge(config, doc, file.resolve(), (), origins, problems, override=False)
    return config, origins


def _read_yaml(file: Path, root: Path) -> dict[str, Any]:
    try:
        doc = yaml.load(file.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as err:
        raise BundleError(f"{_rel(file, root)}: not valid YAML: {err}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise BundleError(f"{_rel(file, root)}: the top level must be a mapping, not {type(doc).__name__}")
    return doc


def _merge(
    dst: dict[str, Any],
    src: Mapping[str, Any],
    file: Path,
    path: Path_,
    origins: dict[Path_, Path],
    problems: list[str],
    *,
    override: bool,
) -> None:
    """Merge `src` into `dst` key by key; lists and scalars replace. Records which file set each key."""
    for raw_key, value in src.items():
        key = str(raw_key)
        key_path = (*path, key)
        declaration = (len(key_path) == 3 and path[0] == "resources") or (
            len(key_path) == 2 and path[0] in ("variables", "targets")
        )
        if not override and declaration and key in dst:
            first = origins.get(key_path, file).name
            problems.append(f"{file.name}: {_dotted(key_path)}: already declared in {first}: keep one")
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, file, key_path, origins, problems, override=override)
            continue
        dst[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)
        for sub_path in _paths(value, key_path):
            origins[sub_path] = file


def _paths(value: Any, path: Path_) -> Iterator[Path_]:
    yield path
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _paths(v, (*path, str(k)))


# --- variables and ${...} resolution -----------------------------------------------------------------


@dataclass
class _Context:
    root: Path
    bundle_name: str
    target: str
    user_name: str
    short_name: str
    declared: dict[str, Any] = field(default_factory=dict)  # variable -> raw value, before resolution
    raw_paths: dict[str, Path_] = field(default_factory=dict)  # variable -> where its value was set
    values: dict[str, Any] = field(default_factory=dict)  # variable -> resolved value
    resolving: list[str] = field(default_factory=list)  # variables being resolved, to find cycles

    def resolve(self, value: Any, path: Path_, origins: dict[Path_, Path], problems: list[str]) -> Any:
        if isinstance(value, Mapping):
            return {k: self.resolve(v, (*path, str(k)), origins, problems) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, (*path, f"[{i}]"), origins, problems) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _REF.fullmatch(value)
        if whole:
            return self._lookup(whole.group(1), value, path, origins, problems)

        def substitute(match: re.Match[str]) -> str:
            found = self._lookup(match.group(1), match.group(0), path, origins, problems)
            if isinstance(found, (list, dict)):
                problems.append(
                    f"{_where(origins, path, self.root)}: {match.group(0)} is a list or mapping and cannot be "
                    "part of a longer string"
                )
                return match.group(0)
            return _text(found)

        return _REF.sub(substitute, value)

    def _lookup(
        self, ref: str, text: str, path: Path_, origins: dict[Path_, Path], problems: list[str]
    ) -> Any:
        head, _, rest = ref.partition(".")
        if head == "var":
            return self._variable(rest, text, path, origins, problems)
        if head == "bundle" and rest in ("name", "target"):
            return self.bundle_name if rest == "name" else self.target
        if head == "workspace":
            local = {
                "file_path": str(self.root),
                "root_path": str(self.root),
                "current_user.userName": self.user_name,
                "current_user.short_name": self.short_name,
            }
            return local.get(rest, text)  # other workspace values exist only in a workspace
        if head in ("resources", "artifacts"):
            return text  # known after deployment; check_references checks the target exists
        problems.append(
            f"{_where(origins, path, self.root)}: {text} is not a reference this bundle can resolve "
            "(known: ${var.*}, ${bundle.name}, ${bundle.target}, ${workspace.*}, ${resources.*}, ${artifacts.*})"
        )
        return text

    def _variable(
        self, ref: str, text: str, path: Path_, origins: dict[Path_, Path], problems: list[str]
    ) -> Any:
        name, _, subfields = ref.partition(".")
        if name not in self.declared:
            problems.append(
                f"{_where(origins, path, self.root)}: {text} uses variable '{name}', which is not declared: "
                f"add it under variables: in {_ROOT_FILE} (declared: {', '.join(sorted(self.declared)) or 'none'})"
            )
            return text
        if name not in self.values:
            if name in self.resolving:
                cycle = " -> ".join([*self.resolving, name])
                problems.append(
                    f"{_ROOT_FILE}: variables: the variables refer to each other in a cycle: {cycle}"
                )
                return text
            raw = self.declared[name]
            if raw is _UNSET:
                problems.append(
                    f"{_where(origins, path, self.root)}: {text}: variable '{name}' has no default and target "
                    f"'{self.target}' sets no value: give it a default or set targets.{self.target}.variables.{name}"
                )
                return text
            self.resolving.append(name)
            try:
                self.values[name] = self.resolve(raw, self.raw_paths[name], origins, problems)
            finally:
                self.resolving.pop()
        value = self.values[name]
        for part in filter(None, subfields.split(".")):
            if not isinstance(value, Mapping) or part not in value:
                problems.append(
                    f"{_where(origins, path, self.root)}: {text}: variable '{name}' has no field '{part}'"
                )
                return text
            value = value[part]
        return value


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _declare_variables(
    config: Mapping[str, Any],
    target: str,
    target_cfg: Mapping[str, Any],
    overrides: dict[str, Any],
    origins: dict[Path_, Path],
    root: Path,
    context: _Context,
    problems: list[str],
) -> None:
    declared = config.get("variables") or {}
    for name, spec in declared.items():
        if not isinstance(spec, Mapping):
            problems.append(
                f"{_where(origins, ('variables', name), root)}: variables.{name}: declare it as a mapping "
                f"with description and default, not {spec!r}"
            )
            spec = {"default": spec}
        if "lookup" in spec and "default" not in spec:
            problems.append(
                f"{_where(origins, ('variables', name), root)}: variables.{name}: a lookup variable needs a "
                "workspace; give it a default for local runs"
            )
        context.declared[name] = spec.get("default", _UNSET)
        context.raw_paths[name] = ("variables", name, "default")
    for name, value in (target_cfg.get("variables") or {}).items():
        path = ("targets", target, "variables", name)
        if name not in context.declared:
            problems.append(
                f"{_where(origins, path, root)}: {_dotted(path)}: sets variable '{name}', which is not declared "
                f"under variables: in {_ROOT_FILE}"
            )
            continue
        if isinstance(value, Mapping) and set(value) & {"default", "lookup", "description", "type"}:
            if "default" not in value:
                continue
            value, path = value["default"], (*path, "default")
        context.declared[name] = value
        context.raw_paths[name] = path
    for name, value in overrides.items():
        if name not in context.declared:
            raise BundleError(f"variable override '{name}': no such variable in {_ROOT_FILE}")
        context.declared[name] = value
        context.raw_paths[name] = ("variables", name)


# --- pipelines --------------------------------------------------------------------------------------


def _pipeline_spec(
    bundle: Bundle, key: str, settings: Mapping[str, Any], presets: Mapping[str, Any], problems: list[str]
) -> PipelineSpec:
    path = ("resources", "pipelines", key)
    libraries: list[Path] = []
    for i, entry in enumerate(settings.get("libraries") or []):
        pattern, files = library_files(bundle, key, entry)
        if pattern is None:
            problems.append(
                f"{bundle.where((*path, 'libraries'))}[{i}]: only glob, file and notebook libraries can run "
                f"locally, not {entry!r}"
            )
        libraries.extend(files)
    if "pipelines_development" in presets:
        development = bool(presets["pipelines_development"])
    else:
        development = bundle.mode == "development" or bool(settings.get("development", False))
    catalog = str(settings.get("catalog", ""))
    schema = str(settings.get("schema", settings.get("target", "")))
    event_log = settings.get("event_log") or {}
    event_log_name = str(event_log.get("name", ""))
    log_catalog = str(event_log.get("catalog", catalog))
    log_schema = str(event_log.get("schema", schema))
    return PipelineSpec(
        key=key,
        name=str(settings.get("name", key)),
        catalog=catalog,
        schema=schema,
        continuous=bool(settings.get("continuous", False)),
        development=development,
        libraries=sorted(set(libraries)),
        configuration={str(k): _text(v) for k, v in (settings.get("configuration") or {}).items()},
        event_log_name=event_log_name,
        event_log_table=f"{log_catalog}.{log_schema}.{event_log_name}" if event_log_name else "",
        source=bundle.file_of(path),
        dependencies=tuple(_text(d) for d in (settings.get("environment") or {}).get("dependencies") or ()),
    )


def library_files(bundle: Bundle, key: str, entry: Any) -> tuple[str | None, list[Path]]:
    """The pattern of one `libraries` entry of pipeline `key` and the .py files it matches.

    Relative paths are relative to the file that declares the entry. A glob such as `../pipelines/batch/**`
    matches every file below that folder; only `.py` files outside `__pycache__` count."""
    entry = entry if isinstance(entry, Mapping) else {}
    if isinstance(entry.get("glob"), Mapping):
        pattern = str(entry["glob"].get("include", ""))
    elif isinstance(entry.get("file"), Mapping):
        pattern = str(entry["file"].get("path", ""))
    elif isinstance(entry.get("notebook"), Mapping):
        pattern = str(entry["notebook"].get("path", ""))
    else:
        return None, []
    base = bundle.file_of(("resources", "pipelines", key, "libraries")).parent
    full = Path(pattern) if Path(pattern).is_absolute() else base / pattern
    candidates = [Path(p) for p in glob.glob(str(full), recursive=True)]
    if not candidates and full.suffix != ".py":
        candidates = [full.with_name(full.name + ".py")]  # a notebook path names a .py file without suffix
    files = [
        p.resolve() for p in candidates if p.is_file() and p.suffix == ".py" and "__pycache__" not in p.parts
    ]
    return pattern, sorted(files)


# --- checks -----------------------------------------------------------------------------------------


def check_references(bundle: Bundle) -> list[str]:
    """Problems the bundle JSON schema cannot see, over every target of the bundle:

    * every `${var.X}` is declared and resolves in each target; every declared variable is used;
    * every `${resources.<kind>.<key>...}` names a resource of the bundle, every `${artifacts.<key>...}` an
      artifact;
    * every pipeline publishes to a catalog and schema and its event log to a named table;
    * every pipeline library glob/path matches at least one .py file;
    * each of the ten bronze tables is covered (a `bz_<table>.py` file under a pipeline's libraries) by
      exactly one pipeline;
    * the job `inventory_bronze_hourly` is scheduled every hour in Asia/Kolkata and updates every triggered
      pipeline; every job schedule is in Asia/Kolkata; pipeline tasks start only triggered pipelines, and
      their table selections name tables of that pipeline.

    A problem found in every target is reported once; otherwise it names its targets."""
    found: dict[str, list[str]] = {}
    for target in bundle.targets:
        loaded = load_bundle(
            bundle.root, target, variables=dict(bundle.overrides), user=bundle.user, strict=False
        )
        for problem in (*loaded.problems, *_unused_variables(loaded), *_check_target(loaded)):
            found.setdefault(problem, []).append(target)
    every = len(bundle.targets)
    return [p if len(ts) == every else f"{p} (target {', '.join(ts)})" for p, ts in found.items()]


def _check_target(bundle: Bundle) -> list[str]:
    return [
        *_check_resource_refs(bundle),
        *_check_pipelines(bundle),
        *_check_coverage(bundle),
        *_check_jobs(bundle),
    ]


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, f"[{i}]"))
    elif isinstance(value, str):
        yield path, value


def _unused_variables(bundle: Bundle) -> list[str]:
    used: set[str] = set()
    for file in {bundle.root / _ROOT_FILE, *bundle.origins.values()}:
        used.update(re.findall(r"\$\{var\.([\w-]+)", file.read_text(encoding="utf-8")))
    return [
        f"{bundle.where(('variables', name))}: variable '{name}' is declared but never used: remove it"
        for name in bundle.variables
        if name not in used
    ]


def _check_resource_refs(bundle: Bundle) -> list[str]:
    problems = []
    for kind, entries in bundle.resources.items():
        for key, settings in entries.items():
            for path, text in _strings(settings, ("resources", kind, key)):
                for ref in _REF.findall(text):
                    parts = ref.split(".")
                    if parts[0] == "resources":
                        ok = len(parts) >= 3 and parts[2] in bundle.resources.get(parts[1], {})
                        have = ", ".join(f"{k}.{n}" for k, e in bundle.resources.items() for n in e)
                    elif parts[0] == "artifacts":
                        ok = len(parts) >= 2 and parts[1] in bundle.artifacts
                        have = ", ".join(bundle.artifacts) or "none"
                    else:
                        continue
                    if not ok:
                        problems.append(
                            f"{bundle.where(path)}: ${{{ref}}} points at nothing (the bundle has: {have})"
                        )
    return problems


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
    for key, settings in bundle.resources.get("pipelines", {}).items():
        for i, entry in enumerate((settings or {}).get("libraries") or []):
            pattern, files = library_files(bundle, key, entry)
            if pattern is not None and not files:
                where = bundle.where(("resources", "pipelines", key, "libraries"))
                problems.append(
                    f"{where}[{i}]: '{pattern}' matches no Python file: write the pipeline sources"
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


# --- helpers ----------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _dotted(path: Path_) -> str:
    return ".".join(path).replace(".[", "[")


def _rel(file: Path, root: Path) -> str:
    try:
        return str(file.resolve().relative_to(root))
    except ValueError:
        return str(file)


def _where(origins: Mapping[Path_, Path], path: Path_, root: Path) -> str:
    for n in range(len(path), 0, -1):
        if path[:n] in origins:
            return f"{_rel(origins[path[:n]], root)}: {_dotted(path)}"
    return f"{_ROOT_FILE}: {_dotted(path)}"
