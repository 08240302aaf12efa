"""python3 -m knytt against the knytt command on the same store."""

import json
import os
import subprocess
import sys

import knytt

from test_store_engine import shop_engine, cli_json


def run(*args):
    env = dict(os.environ,
               PYTHONPATH=os.path.dirname(os.path.dirname(knytt.__file__)))
    return subprocess.run([sys.executable, "-m", "knytt"] + list(args),
                          capture_output=True, text=True, env=env)


def test_module_commands(tmp_path, shop_csv, cli_bin):
    db = tmp_path / "cli.db"
    with shop_engine(db, shop_csv) as e:
        e.train()
    uri = "sqlite:%s" % db
    out = run("recommend", "--db", uri, "u0005", "-k", "4", "--json")
    assert out.returncode == 0, out.stderr
    got = [r["id"] for r in json.loads(out.stdout)]
    want = [r["item"] for r in cli_json(cli_bin, db, "recommend", "u0005",
                                         "--k", "4")["results"]]
    assert got == want and len(got) == 4
    table = run("similar", "--db", uri, "i00003", "-k", "3")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 3
    assert run("search", "--db", uri, "shoe", "--category", "shoes",
               "--json").returncode == 0
    assert run("trending", "--db", uri, "-k", "2").returncode == 0
    assert "libknytt" in run("version").stdout
    bad = run("recommend", "--db", uri, "no-such-user")
    assert bad.returncode == 1 and "KNYTT_ENOTFOUND" in bad.stderr
