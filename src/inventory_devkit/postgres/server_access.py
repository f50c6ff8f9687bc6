"""Where the local server's OS user can reach its binaries and its cluster, when the server runs for root.

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged OS user (see `server`).
That user must traverse every folder above the binaries and the cluster. A clone in root's home (mode
700) or in a `mktemp -d` folder, or a checkout made under `umask 077`, cuts it off. Instead of changing the
modes of the user's folders, what the server must reach is placed where it can:

- the cluster (`pgdata/`, `run/`, `postgres.log`) in `/var/lib/inventory-bronze/clusters/<digest of the
  data folder>/`; the data folder keeps the server's state and lock (read by root only);
- the binaries: a copy of pgserver's `pginstall` (and the libraries its RPATH names) in
  `/var/lib/inventory-bronze/postgresql/<digest>/`, made once per installed build.

A cluster stays where it was first created: an existing `<data folder>/pgdata` is always used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

#: Root-owned folder, traversable by everyone, for what the server's OS user must reach.
SHARED_ROOT = Path("/var/lib/inventory-bronze")


def others_can_reach(path: Path) -> bool:
    """Whether a user other than the owner (and not in its group) can traverse to `path`: every existing
    folder on the way, `path` included when it exists, has the execute bit for others."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def relocated_cluster(data_dir: Path) -> Path:
    return SHARED_ROOT / "clusters" / _digest(str(data_dir))


def cluster_dir(data_dir: Path) -> Path:
    """The folder holding the cluster of the server whose data folder is `data_dir` (resolved)."""
    moved = relocated_cluster(data_dir)
    if (data_dir / "pgdata").exists():
        return data_dir
    if (moved / "pgdata").exists():
        return moved
    if os.geteuid() == 0 and not others_can_reach(data_dir):
        return moved
    return data_dir


def make_reachable_folder(path: Path) -> None:
    """Create `path` and its missing parents, readable and traversable by everyone (mode 755)."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o755, exist_ok=True)
        folder.chmod(0o755)


def reachable_binaries(bin_dir: Path) -> Path:
    """A copy of the PostgreSQL build whose programs are in `bin_dir`, which every user can read and run;
    returns the copy's bin folder. pgserver's layout is kept (`pgserver/pginstall/bin`, the libraries in
    `pgserver.libs` three levels above bin, as the programs' RPATH says). Made once per build."""
    install = bin_dir.resolve().parent
    postgres = bin_dir / "postgres"
    # the build's identity, not its place: copies (copytree keeps mtimes) and clones share one
    key = _digest(f"{install.name}:{postgres.stat().st_mtime_ns}:{postgres.stat().st_size}")
    target = SHARED_ROOT / "postgresql" / key
    copied_bin = target / install.parent.name / install.name / bin_dir.name
    if (copied_bin / "postgres").is_file():
        return copied_bin
    make_reachable_folder(target.parent)
    staging = target.parent / f".{key}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(install, staging / install.parent.name / install.name, symlinks=True)
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    for root, _dirs, files in os.walk(staging):
        os.chmod(root, 0o755)
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                file.chmod(0o755 if file.stat().st_mode & stat.S_IXUSR else 0o644)
    try:
        staging.rename(target)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return copied_bin
