"""python3 -m knytt: a few engine queries from the shell.

    python3 -m knytt version
    python3 -m knytt search --db sqlite:build/demo.db "running shoe"
    python3 -m knytt recommend --db sqlite:build/demo.db u17 -k 5
    python3 -m knytt similar --db sqlite:build/demo.db i42
    python3 -m knytt trending --db sqlite:build/demo.db --window 604800
"""

import argparse
import json
import sys

import knytt


def _filter(args):
    return {k: v for k, v in (("category", args.category),
                              ("price_min", args.price_min),
                              ("price_max", args.price_max),
                              ("in_stock_only", args.in_stock or None))
            if v is not None}


def _print(results, as_json):
    if as_json:
        json.dump([r._asdict() for r in results], sys.stdout)
        sys.stdout.write("\n")
        return
    for rank, r in enumerate(results, 1):
        print("%3d  %-24s %10.4f  %s" % (rank, r.id, r.score, r.reason))


def _parser():
    ap = argparse.ArgumentParser(prog="python3 -m knytt",
                                 description="Query a knytt store.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version", help="library version and SIMD tier")
    cmds = {"search": ("TEXT", "hybrid keyword + vector search"),
            "recommend": ("USER", "recommendations for a user"),
            "similar": ("ITEM", "items like an item"),
            "trending": (None, "trending items")}
    for name, (arg, help_) in cmds.items():
        p = sub.add_parser(name, help=help_)
        p.add_argument("--db", required=True,
                       help="store URI (sqlite:PATH or postgres://...)")
        p.add_argument("--tenant", default=None)
        p.add_argument("-k", type=int, default=10, help="results (10)")
        p.add_argument("--json", action="store_true",
                       help="print JSON instead of a table")
        if arg:
            p.add_argument("what", metavar=arg)
        if name == "trending":
            p.add_argument("--window", type=float, default=86400,
                           help="half-life in seconds (86400)")
        if name == "search":
            p.add_argument("--user", default=None,
                           help="re-rank toward this user's taste")
        p.add_argument("--category", default=None)
        p.add_argument("--price-min", type=float, default=None)
        p.add_argument("--price-max", type=float, default=None)
        p.add_argument("--in-stock", action="store_true")
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.cmd == "version":
        print("knytt %s (libknytt %s, %s)" % (knytt.__version__,
                                              knytt.version(),
                                              knytt.simd_name()))
        return 0
    try:
        with knytt.Engine(args.db, tenant=args.tenant) as e:
            f = _filter(args)
            if args.cmd == "search":
                res = e.search(args.what, args.k, user=args.user, filter=f)
            elif args.cmd == "recommend":
                res = e.recommend(args.what, args.k, filter=f)
            elif args.cmd == "similar":
                res = e.similar(args.what, args.k, filter=f)
            else:
                res = e.trending(args.k, args.window, args.category)
            _print(res, args.json)
    except knytt.Error as exc:
        print("knytt: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
