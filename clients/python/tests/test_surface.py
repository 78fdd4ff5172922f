"""The async client has every method of the sync one, with the same parameters."""

import inspect
import os
import sys
import unittest

import jobs_api
from jobs_api import AsyncJobsApi, JobsApi


class SurfaceTest(unittest.TestCase):
    def test_every_method_of_jobs_api_is_on_async_jobs_api_with_the_same_parameters(self) -> None:
        names = [n for n, f in inspect.getmembers(JobsApi, inspect.isfunction) if not n.startswith("_")]
        self.assertGreater(len(names), 50)
        for name in names:
            sync = getattr(JobsApi, name)
            self.assertTrue(hasattr(AsyncJobsApi, name), name)
            async_ = getattr(AsyncJobsApi, name)
            self.assertEqual(list(inspect.signature(sync).parameters.values()), list(inspect.signature(async_).parameters.values()), name)
            iterates = name in ("watch",) or name.startswith("iter_")
            check = inspect.isasyncgenfunction if iterates else inspect.iscoroutinefunction
            self.assertTrue(check(async_), name)


class InstalledTest(unittest.TestCase):
    @unittest.skipUnless(os.environ.get("JOBS_API_EXPECT_INSTALLED"), "JOBS_API_EXPECT_INSTALLED (the venv) is set by the project's test suite")
    def test_the_tests_import_the_installed_package(self) -> None:
        venv = os.environ["JOBS_API_EXPECT_INSTALLED"]
        self.assertTrue(os.path.abspath(jobs_api.__file__).startswith(os.path.abspath(venv)), jobs_api.__file__)
        self.assertTrue(os.path.isfile(os.path.join(os.path.dirname(sys.executable), "jobsapi")))


if __name__ == "__main__":
    unittest.main()
