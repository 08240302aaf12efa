#!/bin/sh
# meta.sh BUILD_DIR -- checks about the project rather than one function:
#  1. libknytt.so exports only knytt_* symbols;
#  2. every exported function has a man page (a page or a .so alias);
#  3. every error code has a description and a name.
# Prints "meta: N passed, M failed".
set -u
b=${1:-build}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "meta: FAIL: $*"; }

syms=$(nm -D --defined-only "$b/libknytt.so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] && ok || bad "no exported symbols in $b/libknytt.so"
for s in $syms; do
	case $s in
	knytt_*) ok ;;
	*) bad "exported symbol without the knytt_ prefix: $s" ;;
	esac
	if [ -f "man/$s.3" ]; then ok; else bad "no man page man/$s.3 for $s"; fi
done
codes=$(sed -n 's/^[[:space:]]*X(\([A-Z]*\), *\(-*[0-9]*\), *"\(.*\)").*/\1:\3/p' include/knytt.h)
[ -n "$codes" ] && ok || bad "no error codes found in include/knytt.h"
for c in $codes; do
	case $c in
	*:) bad "error code ${c%%:*} has no description" ;;
	*) ok ;;
	esac
done
echo "meta: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
