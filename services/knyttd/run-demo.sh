#!/bin/sh
# run-demo.sh BUILD_DIR [HOST:PORT] -- what `make run` does: loads the
# demo shop into BUILD_DIR/demo.db (unless it is there), starts knyttd on
# it in the foreground, and prints its URL and curl examples with a key
# of the demo shop that work as printed.  Ctrl-C stops knyttd (SIGTERM:
# it drains and flushes before it exits).
set -eu
b=${1:-build}
listen=${2:-127.0.0.1:8080}
db=$b/demo.db

if [ ! -f "$db" ]; then
	echo "make run: loading the demo shop into $db (knytt demo)..."
	"./$b/bin/knytt" demo --db "sqlite:$db" > "$b/demo.log"
fi

# The admin key: kept in a file only its owner reads, never in argv.
admin=$b/knyttd-admin.key
if [ ! -s "$admin" ]; then
	umask 077
	od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$admin"
	umask 022
fi

out=$b/knyttd.out
"./$b/bin/knyttd" --listen "$listen" --db "sqlite:$db" \
	--admin-key-file "$admin" > "$out" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' INT TERM
url=
for _ in $(seq 100); do
	url=$(sed -n 's|^knyttd: listening on \(http://[^ ]*\).*|\1|p' "$out")
	[ -n "$url" ] && break
	kill -0 $pid 2>/dev/null || { echo "make run: knyttd did not start (is $listen taken? make run LISTEN=127.0.0.1:8081)"; exit 1; }
	sleep 0.1
done
[ -n "$url" ] || { echo "make run: knyttd did not start"; kill $pid; exit 1; }

# Keys of the demo shop (tenant "default"), made once and kept; made
# again when the database was rebuilt and they no longer work.
keys=$b/demo-keys
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
newkey() {
	curl -s -X POST "$url/api/v1/admin/tenants/default/keys" \
		-H "Authorization: Bearer $(cat "$admin")" \
		-H 'Content-Type: application/json' -d "{\"kind\":\"$1\"}" |
		sed -n 's/.*"key":"\([^"]*\)".*/\1/p'
}
SK= PK=
[ -f "$keys" ] && . "./$keys"
if [ -z "$SK" ] || [ "$(code "$url/api/v1/models" -H "Authorization: Bearer $SK")" != 200 ] ||
	[ "$(code "$url/api/v1/trending" -H "Authorization: Bearer $PK")" != 200 ]; then
	SK=$(newkey secret)
	PK=$(newkey public)
	umask 077
	printf 'SK=%s\nPK=%s\n' "$SK" "$PK" > "$keys"
	umask 022
fi

cat <<TXT

knyttd serves the demo shop at $url  (store: $db; Ctrl-C stops it)
storefront:   $url/?key=$PK
back office:  $url/admin  (enter the secret key; the admin key is in $admin)
secret key (back office):  $SK
public key (web pages):    $PK

Try:
  curl -s $url/health
  curl -s -X POST $url/api/v1/recommendations -H 'Authorization: Bearer $SK' \\
       -H 'Content-Type: application/json' -d '{"user_id": "u0001", "count": 5}'
  curl -s -X POST $url/api/v1/search -H 'Authorization: Bearer $PK' \\
       -H 'Content-Type: application/json' -d '{"query": "waterproof boot", "count": 5, "filters": {"price_max": 150}}'
  curl -s '$url/api/v1/similar/i00037?count=5' -H 'Authorization: Bearer $PK'
  curl -s '$url/api/v1/trending?window=7d&count=5&category=shoes' -H 'Authorization: Bearer $PK'
  curl -s -X POST $url/api/v1/interactions -H 'Authorization: Bearer $SK' \\
       -H 'Content-Type: application/json' -d '{"user_id": "u0001", "item_id": "i00060", "interaction_type": "purchase"}'
  curl -s -X POST $url/api/v1/models/train -H 'Authorization: Bearer $SK'

One JSON line per request follows (the log).
TXT
wait $pid
