"""Binder files that pin the environment recorded with a run.

``nbtrack binder RUN`` turns ``Run.environment`` (Python version and installed
packages) into the two files repo2docker reads from a ``binder/`` folder:
``runtime.txt`` (``python-X.Y``) and ``requirements.txt`` (``name==version``).
A colleague who opens the repository on mybinder.org then gets the interpreter
and the package versions that produced the result.

Not every recorded package can be pinned from PyPI: a package installed from a
local folder (editable or not), one with a local version label (``1.0+cu118``)
or one whose name or version is not valid for pip is left out, and reported with
the reason so the user can add it by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from .exceptions import TargetExistsError, UsageError
from .models import Run

RUNTIME_FILE = "runtime.txt"
REQUIREMENTS_FILE = "requirements.txt"

# PEP 508 distribution names.
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_PYTHON_RE = re.compile(r"(\d+)\.(\d+)")
_GITHUB_RE = re.compile(r"github\.com[:/](?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class SkippedPackage:
    """A recorded package left out of ``requirements.txt``, and why."""

    name: str
    version: str
    reason: str


@dataclass(frozen=True)
class BinderSpec:
    """What the Binder files of one run say: Python version, requirements, omissions."""

    run_id: str
    python: str | None
    platform: str
    requirements: list[str]
    skipped: list[SkippedPackage]
    warnings: list[str] = field(default_factory=list)
    notebook_path: str | None = None

    def files(self) -> dict[str, str]:
        """File name → content of the files to write into ``binder/``."""
        header = [
            f"# Written by `nbtrack binder {self.run_id[:12]}`: the packages recorded with run",
            f"# {self.run_id} (platform {self.platform}).",
        ]
        if self.skipped:
            header.append("# Left out (not installable from PyPI by name and version):")
            header += [f"#   {s.name} {s.version}: {s.reason}" for s in self.skipped]
        files = {REQUIREMENTS_FILE: "\n".join([*header, *self.requirements]) + "\n"}
        if self.python:
            # repo2docker reads the whole file as the runtime: no comments here.
            files[RUNTIME_FILE] = f"python-{self.python}\n"
        return files

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _installed_origin(name: str, version: str) -> tuple[str | None, str | None]:
    """``(requirement, skip_reason)`` from how ``name`` is installed in this environment.

    Only consulted when this environment holds the same version the run recorded:
    then its ``direct_url.json`` (PEP 610) tells a package installed from a folder
    (which no one else can install) from one installed from a VCS or an archive URL
    (which pip can install again, pinned to the same commit or file).
    """
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None, None
    if dist.version != version:
        return None, None
    raw = dist.read_text("direct_url.json")
    if not raw:
        return None, None
    try:
        direct = json.loads(raw)
    except ValueError:
        return None, None
    url = str(direct.get("url", ""))
    if "dir_info" in direct:
        editable = bool(direct["dir_info"].get("editable"))
        where = url.removeprefix("file://")
        return None, f"{'editable install' if editable else 'installed'} from the folder {where}"
    if "vcs_info" in direct:
        vcs = direct["vcs_info"]
        return f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}", None
    if url.startswith("file:"):
        return None, f"installed from the local file {url.removeprefix('file://')}"
    if url:
        return f"{name} @ {url}", None
    return None, None


def requirement_for(name: str, version: str) -> tuple[str | None, str | None]:
    """``(requirement line, None)`` for a pinnable package, else ``(None, reason)``."""
    if not _NAME_RE.match(name):
        return None, "not a valid package name"
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None, f"version {version!r} is not a PEP 440 version"
    if parsed.local is not None:
        return None, f"local version label +{parsed.local}: built locally or from a non-PyPI index"
    requirement, reason = _installed_origin(name, version)
    if reason:
        return None, reason
    return requirement or f"{name}=={version}", None


def _requirement_name(line: str) -> str:
    return re.split(r"==| @ ", line, maxsplit=1)[0].lower()


def _pip_git_url(remote: str) -> str | None:
    """A URL pip can clone without credentials, from a git remote (scp-like GitHub
    addresses become https); None for a local path."""
    if re.match(r"^[\w.-]+@[\w.-]+:", remote):  # git@github.com:owner/repo.git
        user_host, _, path = remote.partition(":")
        return f"https://{user_host.partition('@')[2]}/{path}"
    if remote.startswith(("https://", "http://", "ssh://", "git://")):
        return remote
    return None


def checkout_requirement(folder: Path) -> tuple[str | None, str | None]:
    """``(nbtrack @ git+URL@COMMIT, None)`` for a checkout with a usable ``origin``,
    else ``(None, what to do)``."""
    commit = _git(["rev-parse", "HEAD"], folder)
    if commit is None:
        return None, (
            f"nbtrack is installed from the folder {folder}, which is not a git checkout: "
            "Binder cannot install it. Install a release (pip install nbtrack) or add "
            "'nbtrack @ git+<repository URL>@<commit>' to requirements.txt by hand"
        )
    remote = _git(["remote", "get-url", "origin"], folder)
    url = _pip_git_url(remote) if remote else None
    if url is None:
        return None, (
            f"nbtrack is installed from the checkout {folder}, which has no public origin "
            f"remote{f' ({remote})' if remote else ''}: push it (git remote add origin URL; "
            "git push) and run nbtrack binder again, or add "
            f"'nbtrack @ git+<repository URL>@{commit}' to requirements.txt by hand"
        )
    if not url.endswith(".git") and "github.com" in url:
        url += ".git"
    return f"nbtrack @ git+{url}@{commit}", None


def self_requirement() -> tuple[str | None, str | None]:
    """How Binder installs the nbtrack of this environment: ``(requirement, None)`` —
    a pinned release from PyPI, or the checkout's repository at its commit — or
    ``(None, what to do)``."""
    try:
        dist = metadata.distribution("nbtrack")
    except metadata.PackageNotFoundError:
        return None, "nbtrack is not installed here as a package: add it to requirements.txt"
    raw = dist.read_text("direct_url.json")
    direct = json.loads(raw) if raw else {}
    url = str(direct.get("url", ""))
    if "dir_info" in direct and url.startswith("file://"):
        return checkout_requirement(Path(url.removeprefix("file://")))
    if "vcs_info" in direct:
        vcs = direct["vcs_info"]
        return f"nbtrack @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}", None
    if url:
        return f"nbtrack @ {url}", None
    return f"nbtrack=={dist.version}", None


def binder_spec(run: Run) -> BinderSpec:
    """The Binder files for the environment recorded with ``run``.

    Raises ``UsageError`` when the run recorded no environment.
    """
    env = run.environment
    if env is None:
        raise UsageError(f"run {run.run_id[:12]} has no recorded environment")
    requirements: list[str] = []
    skipped: list[SkippedPackage] = []
    for name, version in sorted(env.packages.items(), key=lambda kv: kv[0].lower()):
        line, reason = requirement_for(name, str(version))
        if line:
            requirements.append(line)
        else:
            skipped.append(SkippedPackage(name, str(version), reason or "unknown"))
    match = _PYTHON_RE.search(env.python or "")
    python = f"{match.group(1)}.{match.group(2)}" if match else None
    warnings = []
    # nbtrack itself, as this environment has it: the notebooks load it on Binder.
    requirements = [r for r in requirements if _requirement_name(r) != "nbtrack"]
    skipped = [s for s in skipped if s.name.lower() != "nbtrack"]
    own, problem = self_requirement()
    if own:
        requirements.append(own)
        requirements.sort(key=lambda line: _requirement_name(line))
    else:
        warnings.append(str(problem))
    if python is None:
        warnings.append(f"no Python version in {env.python!r}: runtime.txt not written")
    if env.platform and not env.platform.lower().startswith("linux"):
        warnings.append(
            f"the run was recorded on {env.platform}; Binder runs Linux, so "
            "platform-specific packages in requirements.txt may fail to install"
        )
    return BinderSpec(
        run_id=run.run_id,
        python=python,
        platform=env.platform,
        requirements=requirements,
        skipped=skipped,
        warnings=warnings,
        notebook_path=run.notebook_path,
    )


def write_binder(spec: BinderSpec, out_dir: Path, force: bool = False) -> list[Path]:
    """Write the files of ``spec`` into ``out_dir``; returns the paths written.

    Existing files are left untouched unless ``force``: nothing is written if any
    target exists (``TargetExistsError`` naming them; not a usage error, exit code 1).
    """
    files = spec.files()
    targets = {out_dir / name: text for name, text in files.items()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise TargetExistsError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; pass --force to overwrite"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    return list(targets)


def _git(args: list[str], cwd: Path) -> str | None:
    """The stripped output of a git command, or None when git fails or is absent."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def git_toplevel(folder: Path) -> Path | None:
    """The root of the git work tree holding ``folder``, if any."""
    top = _git(["rev-parse", "--show-toplevel"], folder)
    return Path(top) if top else None


def binder_url(repo_root: Path, notebook: str | None) -> str | None:
    """The mybinder.org launch URL of ``repo_root`` when its ``origin`` is on GitHub.

    The URL opens ``notebook`` (a path relative to ``repo_root``) in JupyterLab.
    """
    match = _GITHUB_RE.search(_git(["remote", "get-url", "origin"], repo_root) or "")
    if not match:
        return None
    # The current branch (also before the first commit); HEAD when detached.
    ref = _git(["symbolic-ref", "--short", "HEAD"], repo_root) or "HEAD"
    url = f"https://mybinder.org/v2/gh/{match['owner']}/{match['repo']}/{ref}"
    return f"{url}?urlpath=lab/tree/{notebook}" if notebook else url
