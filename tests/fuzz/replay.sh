#!/bin/sh
# tests/fuzz/replay.sh BUILD TARGET... -- make test's (and make
# sanitize's) pass over the fuzz inputs: BUILD/fuzz/TARGET, the target
# built with the normal compiler and tests/fuzz/replay.c, runs once over
# every seed of tests/fuzz/corpus/TARGET/ and every input that once
# crashed, tests/fuzz/regress/TARGET/.  A crash, a sanitizer report or an
# abort fails the test.
set -u
build=$1
shift
fail=0
for t in "$@"; do
	dirs=""
	for d in tests/fuzz/corpus/"$t" tests/fuzz/regress/"$t"; do
		[ -d "$d" ] && dirs="$dirs $d"
	done
	if [ -z "$dirs" ]; then
		echo "fuzz replay: $t has no corpus (tests/fuzz/corpus/$t)" >&2
		fail=1
		continue
	fi
	# shellcheck disable=SC2086
	if ! "$build/fuzz/$t" $dirs; then
		echo "fuzz replay: $t FAILED" >&2
		fail=1
	fi
done
[ "$fail" = 0 ] && echo "fuzz replay: ok ($# targets)"
exit "$fail"
