"""The in-tree build backend (_build/jobs_api_build.py): the wheel, the sdist and the editable wheel it writes."""

import base64
import hashlib
import importlib.util
import os
import sys
import tarfile
import tempfile
import unittest
import zipfile
from types import ModuleType
from typing import Dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jobs_api_build", os.path.join(ROOT, "_build", "jobs_api_build.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildTest(unittest.TestCase):
    def setUp(self) -> None:
        self.b = backend()
        self.out = tempfile.mkdtemp(prefix="jobs-api-build-")
        self.version = self.b.read_version()

    def tearDown(self) -> None:
        import shutil

        shutil.rmtree(self.out, ignore_errors=True)

    def test_needs_nothing_to_build(self) -> None:
        self.assertEqual(self.b.get_requires_for_build_wheel(), [])
        self.assertEqual(self.b.get_requires_for_build_sdist(), [])
        self.assertEqual(self.b.get_requires_for_build_editable(), [])

    def test_the_wheel_holds_the_package_its_metadata_and_a_record_that_checks_out(self) -> None:
        name = self.b.build_wheel(self.out)
        self.assertEqual(name, "jobs_api_client-{}-py3-none-any.whl".format(self.version))
        with zipfile.ZipFile(os.path.join(self.out, name)) as wheel:
            files: Dict[str, bytes] = {n: wheel.read(n) for n in wheel.namelist()}
        info = "jobs_api_client-{}.dist-info/".format(self.version)
        for needed in ("jobs_api/__init__.py", "jobs_api/models.py", "jobs_api/py.typed", "jobs_api/cli.py", "jobs_api/aio.py", "jobs_api_client.py"):
            self.assertIn(needed, files)
        self.assertFalse([n for n in files if "__pycache__" in n or n.startswith(("tests/", "_build/"))])
        metadata = files[info + "METADATA"].decode()
        self.assertIn("Name: jobs-api-client\n", metadata)
        self.assertIn("Version: {}\n".format(self.version), metadata)
        self.assertIn("Requires-Python: >=3.9\n", metadata)
        self.assertNotIn("Requires-Dist", metadata)
        self.assertIn("# jobs-api-client", metadata)  # the README as the long description
        self.assertIn("[console_scripts]\njobsapi = jobs_api.cli:run\n", files[info + "entry_points.txt"].decode())
        self.assertIn("Tag: py3-none-any\n", files[info + "WHEEL"].decode())
        record = files[info + "RECORD"].decode().splitlines()
        self.assertEqual(sorted(line.split(",")[0] for line in record), sorted(files))
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path == info + "RECORD":
                self.assertEqual((digest, size), ("", ""))
                continue
            expected = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(files[path]).digest()).rstrip(b"=").decode()
            self.assertEqual((digest, int(size)), (expected, len(files[path])), path)

    def test_the_same_sources_give_the_same_wheel(self) -> None:
        first = self.b.build_wheel(self.out)
        with open(os.path.join(self.out, first), "rb") as f:
            before = f.read()
        os.remove(os.path.join(self.out, first))
        with open(os.path.join(self.out, self.b.build_wheel(self.out)), "rb") as f:
            self.assertEqual(f.read(), before)

    def test_the_sdist_holds_the_sources_the_tests_the_backend_and_pkg_info(self) -> None:
        name = self.b.build_sdist(self.out)
        self.assertEqual(name, "jobs_api_client-{}.tar.gz".format(self.version))
        with tarfile.open(os.path.join(self.out, name)) as tar:
            names = set(tar.getnames())
        base = "jobs_api_client-{}/".format(self.version)
        for needed in ("PKG-INFO", "pyproject.toml", "README.md", "_build/jobs_api_build.py", "jobs_api/models.py", "jobs_api/py.typed",
                       "jobs_api_client.py", "tests/test_build.py"):
            self.assertIn(base + needed, names)
        self.assertFalse([n for n in names if "__pycache__" in n])

    def test_the_editable_wheel_points_at_this_directory(self) -> None:
        name = self.b.build_editable(self.out)
        with zipfile.ZipFile(os.path.join(self.out, name)) as wheel:
            pth = [n for n in wheel.namelist() if n.endswith(".pth")]
            self.assertEqual(len(pth), 1)
            self.assertEqual(wheel.read(pth[0]).decode().strip(), ROOT)
            self.assertFalse([n for n in wheel.namelist() if n.startswith("jobs_api/")])

    def test_prepare_metadata(self) -> None:
        info = self.b.prepare_metadata_for_build_wheel(self.out)
        self.assertTrue(os.path.isfile(os.path.join(self.out, info, "METADATA")))

    def test_the_small_toml_reader_reads_pyproject_as_tomllib_does(self) -> None:
        with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        simple = self.b.read_simple_toml(text)
        self.assertEqual(simple["build-system"], {"requires": [], "build-backend": "jobs_api_build", "backend-path": ["_build"]})
        self.assertEqual(simple["project"]["scripts"], {"jobsapi": "jobs_api.cli:run"})
        sample = 'a = "x\\"y" # c\n[t.u]\nb = [\n  "1", # one\n  \'2\',\n]\nc = { text = "MIT", n = 3, ok = true }\n'
        self.assertEqual(self.b.read_simple_toml(sample), {"a": 'x"y', "t": {"u": {"b": ["1", "2"], "c": {"text": "MIT", "n": 3, "ok": True}}}})
        if sys.version_info >= (3, 11):
            import tomllib

            self.assertEqual(simple, tomllib.loads(text))
            self.assertEqual(self.b.read_simple_toml(sample), tomllib.loads(sample))


if __name__ == "__main__":
    unittest.main()
