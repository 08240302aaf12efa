#!/bin/sh
# meta.sh BUILD_DIR -- checks about the project rather than one function:
#  1. libknytt.so exports only knytt_* symbols;
#  2. every exported function has a man page (a page or a .so alias);
#  3. every error code has a description and a name;
#  4. every page under man/ renders from the checkout with man -l, without
#     a warning or an error (an alias page is a symbolic link to its group
#     page in man/, so it needs no "make install" to resolve).
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
# 4. Group pages are rendered with man -l and any message on stderr fails
# them.  An alias renders exactly its target (man follows the link), so it
# is checked to be a link to a rendered page in man/ instead of formatting
# the same group page 190 more times (45 s of CPU); one alias is rendered
# as well, and an alias that is a ".so" file fails the regular-page check.
if command -v man >/dev/null 2>&1; then
	rendered=" "
	for f in man/*.[1-9]; do
		[ -L "$f" ] && continue
		msg=$(MANWIDTH=80 MAN_DISABLE_SECCOMP=1 man -P cat --warnings \
			-l "$f" 2>&1 >/dev/null)
		if [ -z "$msg" ]; then
			ok
			rendered="$rendered${f#man/} "
		else
			bad "man -l $f: $(printf '%s' "$msg" | head -n 2)"
		fi
	done
	for f in man/*.[1-9]; do
		[ -L "$f" ] || continue
		t=$(readlink "$f")
		case $rendered in
		*" $t "*) ok ;;
		*) bad "$f links to '$t', not to a page of man/ that renders" ;;
		esac
	done
	msg=$(MANWIDTH=80 MAN_DISABLE_SECCOMP=1 man -P cat --warnings \
		-l man/knytt_index_search.3 2>&1 >/dev/null)
	[ -z "$msg" ] && ok || bad "man -l man/knytt_index_search.3: $msg"
else
	bad "man is not installed (make deps installs man-db)"
fi
echo "meta: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
