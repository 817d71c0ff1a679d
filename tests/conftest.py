"Shared pytest setup: the `slow` marker (skipped unless --runslow) and helpers for running the CLIs."
import os, subprocess, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]

def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; skipped unless --runslow")

def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"): return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)

def run_cmd(*args, cwd=None, timeout=600, env=None, check=False):
    "Run `python -m ...` or a console script in a subprocess; returns CompletedProcess with text output."
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    e.pop("IN_TEST", None)
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0: raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r

def assert_one_line_error(r, *needles):
    "A bad-input run: non-zero exit, no traceback, one line on stderr naming the problem."
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles: assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]

PY = sys.executable
