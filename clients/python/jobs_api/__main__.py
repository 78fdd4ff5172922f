"""`python -m jobs_api`: the `jobsapi` command."""

from .cli import run

if __name__ == "__main__":
    run()
