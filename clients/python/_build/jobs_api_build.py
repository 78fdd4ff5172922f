"""A PEP 517 (and PEP 660) build backend for this package, from the standard library alone.

`pip install ./clients/python` builds with it: pyproject.toml names it (`backend-path = ["_build"]`) and
requires nothing, so the build downloads nothing, needs no `setuptools` or `wheel`, and works offline with
any Python 3.9 or newer. It reads the [project] table of pyproject.toml (with tomllib where there is one,
else with the small reader below, which understands what that file uses), takes the version from
`__version__` in jobs_api/__init__.py, and writes:

- a wheel (py3-none-any): the `jobs_api` package, the `jobs_api_client` compatibility module, and the
  .dist-info (METADATA, WHEEL, entry_points.txt for the `jobsapi` command, RECORD with SHA-256 digests);
- an editable wheel (PEP 660): a .pth file that puts this directory on sys.path, and the same .dist-info;
- an sdist (.tar.gz): the sources, the tests, this backend and PKG-INFO.

Files are written in a stable order with fixed timestamps (SOURCE_DATE_EPOCH when set), so the same
sources give the same archives.
"""

import base64
import gzip
import hashlib
import io
import os
import re
import sys
import tarfile
import time
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = [
    "build_wheel",
    "build_sdist",
    "build_editable",
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "jobs_api"
MODULES = ("jobs_api_client.py",)
#: What the sdist holds beside the package (directories are taken whole, caches left out).
SDIST_EXTRA = ("pyproject.toml", "README.md", "_build", "tests")


# -- pyproject.toml --------------------------------------------------------------------------------------


def read_toml(text: str) -> Dict[str, Any]:
    """TOML as a dict: tomllib's reading where Python has it (3.11+), else `read_simple_toml`'s."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    return read_simple_toml(text)


_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*")'


def read_simple_toml(text: str) -> Dict[str, Any]:
    """The TOML that pyproject.toml uses: [tables] and [dotted.tables], `key = value` with strings (basic and
    literal), integers, booleans, arrays (over several lines too) and inline tables, and comments."""
    root: Dict[str, Any] = {}
    table = root
    pos = 0
    n = len(text)

    def skip_space(i: int, newlines: bool) -> int:
        while i < n:
            c = text[i]
            if c in " \t\r" or (newlines and c == "\n"):
                i += 1
            elif c == "#":
                while i < n and text[i] != "\n":
                    i += 1
            else:
                break
        return i

    def key_at(i: int) -> Tuple[List[str], int]:
        parts: List[str] = []
        while True:
            i = skip_space(i, False)
            m = re.compile(_KEY).match(text, i)
            if not m:
                raise ValueError("pyproject.toml: a key expected at offset {}".format(i))
            parts.append(m.group(0).strip('"'))
            i = skip_space(m.end(), False)
            if i < n and text[i] == ".":
                i += 1
                continue
            return parts, i

    def value_at(i: int) -> Tuple[Any, int]:
        i = skip_space(i, False)
        c = text[i]
        if text.startswith('"""', i):
            end = text.index('"""', i + 3)
            return _unescape(text[i + 3:end].lstrip("\n")), end + 3
        if c == '"':
            m = re.compile(r'"((?:[^"\\\n]|\\.)*)"').match(text, i)
            if not m:
                raise ValueError("pyproject.toml: an unterminated string at offset {}".format(i))
            return _unescape(m.group(1)), m.end()
        if c == "'":
            end = text.index("'", i + 1)
            return text[i + 1:end], end + 1
        if c == "[":
            items: List[Any] = []
            i += 1
            while True:
                i = skip_space(i, True)
                if text[i] == "]":
                    return items, i + 1
                item, i = value_at(i)
                items.append(item)
                i = skip_space(i, True)
                if text[i] == ",":
                    i += 1
        if c == "{":
            inline: Dict[str, Any] = {}
            i += 1
            while True:
                i = skip_space(i, False)
                if text[i] == "}":
                    return inline, i + 1
                parts, i = key_at(i)
                if text[i] != "=":
                    raise ValueError("pyproject.toml: '=' expected at offset {}".format(i))
                item, i = value_at(i + 1)
                _put(inline, parts, item)
                i = skip_space(i, False)
                if text[i] == ",":
                    i += 1
        m = re.compile(r"true|false|[+-]?\d+").match(text, i)
        if not m:
            raise ValueError("pyproject.toml: a value this reader does not know at offset {}".format(i))
        word = m.group(0)
        return (word == "true") if word in ("true", "false") else int(word), m.end()

    while True:
        pos = skip_space(pos, True)
        if pos >= n:
            return root
        if text[pos] == "[":
            parts, pos = key_at(pos + 1)
            if text[pos] != "]":
                raise ValueError("pyproject.toml: ']' expected at offset {}".format(pos))
            pos += 1
            table = root
            for part in parts:
                table = table.setdefault(part, {})
            continue
        parts, pos = key_at(pos)
        if text[pos] != "=":
            raise ValueError("pyproject.toml: '=' expected at offset {}".format(pos))
        value, pos = value_at(pos + 1)
        _put(table, parts, value)


def _put(table: Dict[str, Any], parts: List[str], value: Any) -> None:
    for part in parts[:-1]:
        table = table.setdefault(part, {})
    table[parts[-1]] = value


def _unescape(s: str) -> str:
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    return re.sub(r"\\(u[0-9A-Fa-f]{4}|.)", lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "u" else escapes.get(m.group(1), m.group(1)), s)


# -- metadata --------------------------------------------------------------------------------------------


class Project:
    """The [project] table, with the version filled in."""

    def __init__(self, root: str = ROOT) -> None:
        with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
            self.table: Dict[str, Any] = read_toml(f.read())["project"]
        self.root = root
        self.name: str = self.table["name"]
        self.version: str = self.table.get("version") or read_version(root)
        #: The distribution's name as file names spell it (PEP 427, PEP 625).
        self.file_name = re.sub(r"[-_.]+", "_", self.name).lower()
        self.dist_info = "{}-{}.dist-info".format(self.file_name, self.version)

    def metadata(self) -> str:
        """METADATA (and PKG-INFO), core metadata 2.1."""
        t = self.table
        lines = ["Metadata-Version: 2.1", "Name: " + self.name, "Version: " + self.version]
        if t.get("description"):
            lines.append("Summary: " + t["description"])
        for key, field in (("keywords", "Keywords"),):
            if t.get(key):
                lines.append("{}: {}".format(field, ",".join(t[key])))
        for author in t.get("authors", []):
            if author.get("name"):
                lines.append("Author: " + author["name"])
            if author.get("email"):
                lines.append("Author-email: " + author["email"])
        license = t.get("license")
        if isinstance(license, dict) and license.get("text"):
            lines.append("License: " + license["text"])
        elif isinstance(license, str):
            lines.append("License: " + license)
        for classifier in t.get("classifiers", []):
            lines.append("Classifier: " + classifier)
        for label, url in sorted(t.get("urls", {}).items()):
            lines.append("Project-URL: {}, {}".format(label, url))
        if t.get("requires-python"):
            lines.append("Requires-Python: " + t["requires-python"])
        for dependency in t.get("dependencies", []):
            lines.append("Requires-Dist: " + dependency)
        body = ""
        readme = t.get("readme")
        if readme:
            path = readme if isinstance(readme, str) else readme.get("file", "")
            kind = "text/markdown" if path.endswith(".md") else "text/x-rst" if path.endswith(".rst") else "text/plain"
            lines.append("Description-Content-Type: " + kind)
            with open(os.path.join(self.root, path), encoding="utf-8") as f:
                body = f.read()
        return "\n".join(lines) + "\n\n" + body

    def entry_points(self) -> str:
        groups: List[Tuple[str, Mapping[str, str]]] = [
            ("console_scripts", self.table.get("scripts", {})),
            ("gui_scripts", self.table.get("gui-scripts", {})),
        ]
        groups += sorted(self.table.get("entry-points", {}).items())
        out = []
        for group, entries in groups:
            if entries:
                out.append("[{}]\n{}\n".format(group, "".join("{} = {}\n".format(k, v) for k, v in sorted(entries.items()))))
        return "\n".join(out)

    def dist_info_files(self, tag: str = "py3-none-any") -> List[Tuple[str, bytes]]:
        wheel = "Wheel-Version: 1.0\nGenerator: jobs_api_build\nRoot-Is-Purelib: true\nTag: {}\n".format(tag)
        files = [("METADATA", self.metadata()), ("WHEEL", wheel)]
        entry_points = self.entry_points()
        if entry_points:
            files.append(("entry_points.txt", entry_points))
        files.append(("top_level.txt", "\n".join([PACKAGE] + [m[:-3] for m in MODULES]) + "\n"))
        return [("{}/{}".format(self.dist_info, name), text.encode("utf-8")) for name, text in files]


def read_version(root: str = ROOT) -> str:
    with open(os.path.join(root, PACKAGE, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', f.read(), re.M)
    if not m:
        raise ValueError("no __version__ in {}/__init__.py".format(PACKAGE))
    return m.group(1)


# -- archives --------------------------------------------------------------------------------------------


def _timestamp() -> float:
    # The oldest date a zip file can hold, unless SOURCE_DATE_EPOCH says otherwise.
    return float(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))


def _source_files(root: str, top: str) -> List[str]:
    """Files under `top` (a file or a directory of `root`), relative to root, without caches."""
    path = os.path.join(root, top)
    if os.path.isfile(path):
        return [top]
    found = []
    for directory, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            found.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
    return found


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _write_wheel(directory: str, project: Project, files: List[Tuple[str, bytes]]) -> str:
    name = "{}-{}-py3-none-any.whl".format(project.file_name, project.version)
    entries = files + project.dist_info_files()
    record_name = "{}/RECORD".format(project.dist_info)
    record = "".join("{},{},{}\n".format(path, _digest(data), len(data)) for path, data in entries)
    record += "{},,\n".format(record_name)
    entries.append((record_name, record.encode("utf-8")))
    date_time = time.gmtime(max(_timestamp(), 315532800))[:6]
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=date_time)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return name


def _read(root: str, path: str) -> bytes:
    with open(os.path.join(root, path), "rb") as f:
        return f.read()


# -- the PEP 517 and PEP 660 hooks ------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    project = Project()
    for path, data in project.dist_info_files():
        target = os.path.join(metadata_directory, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    return project.dist_info


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    project = Project()
    paths = _source_files(ROOT, PACKAGE) + [m for m in MODULES if os.path.isfile(os.path.join(ROOT, m))]
    return _write_wheel(wheel_directory, project, [(p, _read(ROOT, p)) for p in paths])


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    project = Project()
    pth = ("__editable__.{}.pth".format(project.file_name), (ROOT + "\n").encode("utf-8"))
    return _write_wheel(wheel_directory, project, [pth])


def build_sdist(sdist_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    project = Project()
    base = "{}-{}".format(project.file_name, project.version)
    paths: List[str] = []
    for top in (PACKAGE,) + MODULES + SDIST_EXTRA:
        if os.path.exists(os.path.join(ROOT, top)):
            paths += _source_files(ROOT, top)
    files = [(p, _read(ROOT, p)) for p in sorted(set(paths))] + [("PKG-INFO", project.metadata().encode("utf-8"))]
    name = base + ".tar.gz"
    mtime = int(_timestamp())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files:
            info = tarfile.TarInfo("{}/{}".format(base, path))
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with open(os.path.join(sdist_directory, name), "wb") as out:
        out.write(gzip.compress(buffer.getvalue(), mtime=mtime))
    return name
