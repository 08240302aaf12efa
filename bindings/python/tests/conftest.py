"""Shared fixtures: the package from this checkout, the C reference
program (bindings/tests/knytt_ref.c) and the knytt command, both built by
make from the public API only."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("KNYTT_LIBRARY", os.path.join(ROOT, "build",
                                                    "libknytt.so"))


def _tool(env, name):
    path = os.environ.get(env) or os.path.join(ROOT, "build", "bin", name)
    if not os.path.exists(path):
        pytest.fail("%s not found: run make (or set %s)" % (path, env))
    return path


@pytest.fixture(scope="session")
def ref_bin():
    return _tool("KNYTT_REF", "knytt_ref")


@pytest.fixture(scope="session")
def cli_bin():
    return _tool("KNYTT_CLI", "knytt")


@pytest.fixture(scope="session")
def shop_csv(tmp_path_factory, cli_bin):
    """A small synthetic shop written by `knytt gen` (fixed seed)."""
    d = tmp_path_factory.mktemp("shop")
    subprocess.run([cli_bin, "--quiet", "gen", "--out", str(d), "--items",
                    "300", "--users", "60", "--events", "4000", "--seed",
                    "7", "--now", "1767225600000"], check=True,
                   stdout=subprocess.DEVNULL)
    return d
