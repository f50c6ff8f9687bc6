"""A Databricks Asset Bundle (`databricks.yml` + its included resource files) as typed data.

`localdlt run --bundle` takes a pipeline's libraries, configuration, name and environment from here, so a
local run and a deployed run read the same files and cannot drift. `load_bundle(root, target)` reads the bundle the way
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
libraries), which is one piece of logic; splitting it would scatter the resolution rules.
"""

from __future__ import annotations

import copy
import getpass
import glob
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from localdlt.errors import PipelineError

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


class BundleError(PipelineError, ValueError):
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
    spec_type: type[PipelineSpec] = PipelineSpec  # the `spec_type` argument, to reload other targets

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
    spec_type: type[PipelineSpec] = PipelineSpec,
) -> Bundle:
    """Read `root/databricks.yml` and its includes, resolved for `target`.

    `variables` overrides variable values (as `databricks bundle --var` does); `user` is the local
    user name standing for `${workspace.current_user.userName}` (default: the login name). With
    `strict=False` resolution problems are returned in `Bundle.problems` instead of raised, and unresolved
    `${...}` text is left in place. `spec_type` (a subclass of PipelineSpec adding properties) is the type
    of `Bundle.pipelines`' values."""
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
        spec_type=spec_type,
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
    return bundle.spec_type(
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


def check_references(bundle: Bundle, extra: Callable[[Bundle], list[str]] | None = None) -> list[str]:
    """Problems the bundle JSON schema cannot see, over every target of the bundle:

    * every `${var.X}` is declared and resolves in each target; every declared variable is used;
    * every `${resources.<kind>.<key>...}` names a resource of the bundle, every `${artifacts.<key>...}` an
      artifact;
    * every pipeline library glob/path matches at least one .py file;
    * what `extra(bundle_of_one_target)` returns (a project's own rules).

    A problem found in every target is reported once; otherwise it names its targets."""
    found: dict[str, list[str]] = {}
    for target in bundle.targets:
        loaded = load_bundle(
            bundle.root,
            target,
            variables=dict(bundle.overrides),
            user=bundle.user,
            strict=False,
            spec_type=bundle.spec_type,
        )
        checks = (*_unused_variables(loaded), *_check_resource_refs(loaded), *_check_libraries(loaded))
        for problem in (*loaded.problems, *checks, *(extra(loaded) if extra else ())):
            found.setdefault(problem, []).append(target)
    every = len(bundle.targets)
    return [p if len(ts) == every else f"{p} (target {', '.join(ts)})" for p, ts in found.items()]


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


def _check_libraries(bundle: Bundle) -> list[str]:
    problems = []
    for key, settings in bundle.resources.get("pipelines", {}).items():
        for i, entry in enumerate((settings or {}).get("libraries") or []):
            pattern, files = library_files(bundle, key, entry)
            if pattern is not None and not files:
                where = bundle.where(("resources", "pipelines", key, "libraries"))
                problems.append(
                    f"{where}[{i}]: '{pattern}' matches no Python file: write the pipeline sources"
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
