#!/bin/sh
# cli.sh [KNYTT_BINARY] -- runs the real knytt binary on a temporary SQLite
# store: help and usage errors, gen, import, eval, train, the query
# commands with --json, the planted tastes showing up in the answers, the
# documented exit statuses, and the demo.
# Prints "cli: N passed, M failed" and exits non-zero on any failure.
set -u
K=${1:-build/bin/knytt}
case $K in /*) ;; *) K=$(pwd)/$K ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/knytt-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T" || exit 1
unset KNYTT_DB
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "cli: FAIL: $*"; }

# st EXPECTED DESCRIPTION CMD...: runs CMD, output in out/err, checks status
st() {
	want=$1
	what=$2
	shift 2
	"$@" >out 2>err
	got=$?
	if [ "$got" -eq "$want" ]; then ok; else
		bad "$what: exit $got, want $want ($(head -c 300 err))"
	fi
}
# json DESCRIPTION: out must be one valid JSON document
json() {
	if python3 -c 'import json,sys; json.load(sys.stdin)' <out 2>/dev/null
	then ok; else bad "$1: invalid JSON: $(head -c 200 out)"; fi
}
# py DESCRIPTION SCRIPT: a python check reading out (exit 0 = pass)
py() {
	what=$1
	shift
	if msg=$(python3 -c "$1" 2>&1 <out); then ok; else
		bad "$what: $(printf "%s\n" "$msg" | tail -n 1)"
	fi
}

DB=sqlite:$T/t.db
cmds="init import train eval search recommend similar trending feedback gen demo"

# ---- help, version, usage errors --------------------------------------
st 0 "knytt --help" "$K" --help
grep -q "recommend" out && ok || bad "--help lists no commands"
st 0 "knytt --version" "$K" --version
grep -q "^knytt 0\." out && ok || bad "--version: $(cat out)"
for c in $cmds; do
	st 0 "knytt $c --help" "$K" "$c" --help
	grep -q "^usage: knytt $c" out && ok || bad "$c --help: no usage line"
done
st 2 "no command" "$K"
st 2 "unknown command" "$K" frobnicate
st 2 "unknown option" "$K" recommend u1 --bogus
st 2 "missing argument" "$K" recommend
st 2 "extra argument" "$K" similar i1 i2
st 2 "--k 0" "$K" recommend u1 --k 0
st 2 "--k abc" "$K" search shoe --k abc
st 2 "--k without value" "$K" trending --k
st 2 "flag with a value" "$K" recommend u1 --in-stock=1
st 2 "--price-min not a number" "$K" search x --price-min cheap
st 2 "--mmr out of range" "$K" recommend u1 --mmr 2
st 2 "import without a file" "$K" import
st 2 "import with two kinds" "$K" import --items a.csv --users b.csv
st 2 "import unknown format" "$K" import --items a.txt
st 2 "gen without --out" "$K" gen
st 2 "train --model foo" "$K" train --model foo
st 2 "trending --window 2x" "$K" trending --window 2x
st 2 "trending --window 0" "$K" trending --window 0
st 2 "--now not a time" "$K" --now yesterday trending
st 2 "--now bad date" "$K" --now 1998-13-01 trending
st 2 "demo on postgres" "$K" demo --db postgres://localhost/x
test "$(wc -l <err)" -eq 1 && ok || bad "usage error is not one line"

# ---- gen: deterministic, sized, planted ----------------------------------
NOW=1790000000000
st 0 "gen" "$K" gen --out d --items 600 --users 120 --events 12000 \
	--seed 3 --now $NOW
st 0 "gen again" "$K" -q gen --out d2 --items 600 --users 120 \
	--events 12000 --seed 3 --now $NOW
for f in items users interactions; do
	cmp -s d/$f.csv d2/$f.csv && ok || bad "gen $f.csv differs for one seed"
done
st 0 "gen seed 4" "$K" -q gen --out d3 --items 600 --users 120 \
	--events 12000 --seed 4 --now $NOW
cmp -s d/interactions.csv d3/interactions.csv && bad "seeds 3, 4 agree" || ok
test "$(wc -l <d/items.csv)" -eq 601 && ok || bad "items.csv lines"
test "$(wc -l <d/users.csv)" -eq 121 && ok || bad "users.csv lines"
test "$(wc -l <d/interactions.csv)" -eq 12001 && ok || bad "events lines"
st 0 "gen --json" "$K" --json gen --out d4 --items 10 --users 2 --events 5
json "gen --json"

# ---- init, import ------------------------------------------------------
st 3 "unknown tenant" "$K" --db "$DB" --tenant nobody eval
st 0 "init" "$K" --db "$DB" init --json
json "init --json"
py "init counts" 'import json,sys; d=json.load(sys.stdin); assert d["items"]==0 and d["backend"]=="sqlite", d'
st 0 "init again" "$K" --db "$DB" init
for f in items users interactions; do
	st 0 "import $f" "$K" --db "$DB" --json import --$f d/$f.csv
	json "import $f --json"
done
py "import counts" 'import json,sys; d=json.load(sys.stdin); assert d["accepted"]==12000 and d["rejected"]==0, d'
printf 'id,title,price,category\nz1,Good,1.5,misc\nz2,Bad,-3,misc\nz3,Worse,abc,misc\n' >bad.csv
st 4 "import with rejects" "$K" --db "$DB" import --items bad.csv
grep -q "bad.csv:3:" err && grep -q "bad.csv:4:" err && ok ||
	bad "rejected rows not reported by line: $(cat err)"
grep -q "1 items imported, 2 rejected" out && ok || bad "reject summary: $(cat out)"
st 1 "import a missing file" "$K" --db "$DB" import --items nope.csv
# issue 12 items 20 and 21: no password in messages; duplicates counted
"$K" --db 'postgres://u:s3cr%40t@127.0.0.1:1/x?connect_timeout=2' init \
	>out 2>err
grep -q 's3cr' out err && bad "password shown: $(cat out err)" || ok
grep -q 'u:\*\*\*@127' err && ok || bad "redacted URI missing: $(cat err)"
# (dated 2023: an event at the wall clock would lead the wall-clock trending
# checked below)
printf 'user,item,type,ts_ms,event_id\nu0001,z1,view,1700000000000,d1\nu0001,z1,view,1700000000000,d1\n' >dup.csv
st 0 "import duplicates" "$K" --db "$DB" import --interactions dup.csv
grep -q "1 interactions imported, 1 duplicates" out && ok ||
	bad "duplicate summary: $(cat out)"

# ---- eval: the model beats popularity on planted tastes ------------------
st 0 "eval --json" "$K" --db "$DB" --json eval --dim 32
json "eval --json"
py "eval: ALS beats most-popular" 'import json,sys; d=json.load(sys.stdin); assert d["als"]["hr"] > d["popular"]["hr"] + 0.05 and d["users"] > 100, d'

# ---- train and queries ----------------------------------------------------
# --dim 32: the query commands below must pick the stored dimension up
st 0 "train --json" "$K" --db "$DB" --json train --epochs 10 --dim 32
json "train --json"
py "train result" 'import json,sys; d=json.load(sys.stdin); assert d["model_version"]>=1 and d["items_indexed"]>500, d'

# recommendations follow each user's planted taste (90% of their events)
share=$(python3 - "$K" "$DB" 2>/dev/null <<'EOF'
import csv, json, subprocess, sys
k, db = sys.argv[1], sys.argv[2]
taste = {r["id"]: json.loads(r["attributes"])["taste"]
         for r in csv.DictReader(open("d/users.csv"))}
hit = tot = 0
for u in ["u%04d" % i for i in range(1, 21)]:
    out = subprocess.run([k, "--db", db, "--json", "recommend", u, "--k", "10"],
                         capture_output=True, text=True, check=True).stdout
    for r in json.loads(out)["results"]:
        tot += 1
        hit += r["category"].split("/")[0] in taste[u]
print("%.3f" % (hit / max(tot, 1)))
EOF
)
echo "cli: share of recommendations in the planted taste: ${share:-?}"
python3 -c "import sys; sys.exit(0 if float('${share:-0}') >= 0.7 else 1)" &&
	ok || bad "recommendations follow the planted taste: ${share:-?} < 0.7"

st 0 "recommend --json" "$K" --db "$DB" --json recommend u0001 --k 5
json "recommend --json"
py "recommend fields" 'import json,sys; d=json.load(sys.stdin); r=d["results"]; assert d["user"]=="u0001" and len(r)==5 and [x["rank"] for x in r]==[1,2,3,4,5] and all(k in r[0] for k in ("item","title","category","price","score","reason")), d'
st 0 "recommend table" "$K" --db "$DB" recommend u0001 --k 3
grep -q "^rank" out && test "$(wc -l <out)" -eq 4 && ok || bad "table: $(cat out)"
st 0 "recommend --category" "$K" --db "$DB" --json recommend u0001 \
	--category books --price-max 30 --in-stock --k 5
py "filters hold" 'import json,sys; r=json.load(sys.stdin)["results"]; assert r and all(x["category"].startswith("books/") and x["price"]<=30 and x["in_stock"] for x in r), r'
st 3 "recommend unknown user" "$K" --db "$DB" recommend nobody
st 0 "recommend --cold" "$K" --db "$DB" --json recommend nobody --cold
json "recommend --cold"
st 0 "similar --json" "$K" --db "$DB" --json similar i00001 --k 5
json "similar --json"
py "similar excludes the item" 'import json,sys; r=json.load(sys.stdin)["results"]; assert r and all(x["item"]!="i00001" for x in r), r'
st 3 "similar unknown item" "$K" --db "$DB" similar nope
st 0 "search --json" "$K" --db "$DB" --json search "hiking boot" --k 5
json "search --json"
py "search finds hiking" 'import json,sys; r=json.load(sys.stdin)["results"]; assert r and sum(x["category"]=="shoes/hiking" for x in r) >= len(r)*0.6, r'
st 0 "trending --json" "$K" --db "$DB" --json trending --window 1d --k 5
json "trending --json"
# as of the data's own time (gen --now): the burst of its last hours leads
# the 30-minute trend; the wall clock, months later, sees it decayed away
for now in 2026-09-21T14:13:20Z 1790000000 $NOW 2026-09-21T16:13:20+02:00; do
	st 0 "--now $now trending --window 30m" "$K" --db "$DB" --json \
		--now "$now" trending --window 30m --k 3
	py "trending as of $now" 'import json,sys; r=json.load(sys.stdin)["results"]; assert len(r)==3 and r[2]["score"]>1, r'
done
st 0 "trending --window 12h, wall clock" "$K" --db "$DB" --json trending \
	--window 12h --k 3
py "the wall clock: decayed" 'import json,sys; r=json.load(sys.stdin)["results"]; assert all(x["score"]<1e-3 for x in r), r'
st 0 "trending --window 14d" "$K" --db "$DB" --json --now $NOW trending \
	--window 14d --k 3
py "trending 14d" 'import json,sys; r=json.load(sys.stdin)["results"]; assert len(r)==3, r'
st 0 "feedback as of --now" "$K" --db "$DB" --now 1790000000 feedback \
	u0001 i00002 click
st 0 "feedback" "$K" --db "$DB" feedback u0001 i00002 click
st 0 "feedback --json" "$K" --db "$DB" --json feedback u0001 i00002 \
	rating --value 4
json "feedback --json"
st 3 "feedback unknown item" "$K" --db "$DB" feedback u0001 nope view

# ---- two-tower: text features give semantic and hybrid search ------------
DB2=sqlite:$T/tt.db
for f in items users interactions; do
	st 0 "import $f (two-tower store)" "$K" -q --db "$DB2" import --$f d/$f.csv
done
st 0 "train --model twotower" "$K" --db "$DB2" --json train \
	--model twotower --epochs 2
py "two-tower model" 'import json,sys; d=json.load(sys.stdin); assert d["model"]=="twotower" and d["items_indexed"]>500, d'
st 0 "search on two-tower" "$K" --db "$DB2" --json search "trail running" --k 5
py "two-tower search" 'import json,sys; r=json.load(sys.stdin)["results"]; assert r and any(x["reason"] in ("hybrid","semantic") for x in r) and sum(x["category"].startswith("shoes/") for x in r) >= 4, r'
st 0 "recommend on two-tower" "$K" --db "$DB2" --json recommend u0002 --k 5
json "recommend on two-tower"

# ---- demo -------------------------------------------------------------
st 0 "demo" "$K" --quiet demo --db "sqlite:$T/demo/demo.db"
grep -q "demo finished" out && ok || bad "demo output: $(tail -3 out)"
grep -q "knytt recommend u0001" out && grep -q "knytt search" out && ok ||
	bad "demo misses steps"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
