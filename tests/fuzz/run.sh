#!/bin/sh
# tests/fuzz/run.sh SECONDS TARGET... -- make fuzz: runs each libFuzzer
# target build-fuzz/TARGET for SECONDS, one after the other, on its seeds
# (tests/fuzz/corpus/TARGET/), the inputs that once crashed
# (tests/fuzz/regress/TARGET/) and a working corpus that grows across
# runs (build-fuzz/corpus/TARGET/, the first directory, where libFuzzer
# writes).  A crash, leak, sanitizer report, timeout (FUZZ_TIMEOUT s per
# input, default 30) or out-of-memory (2 GB) is written to
# build-fuzz/crashes/TARGET/ and makes the run fail once every target has
# run.  The log of each run is build-fuzz/TARGET.log; a summary line per
# target (executions, coverage, features, corpus) is printed.
# Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 ...".  FUZZ_SEED=N fixes
# libFuzzer's seed: with the same binary and starting corpus the run
# mutates the same way, so a failure seen in CI (which sets it) replays
# locally with the same command; unset, every run explores anew.
set -u
# The log's status lines carry raw dictionary bytes: read them as bytes.
export LC_ALL=C
secs=$1
shift
fail=""
for t in "$@"; do
	mkdir -p build-fuzz/corpus/"$t" build-fuzz/crashes/"$t"
	dirs="build-fuzz/corpus/$t"
	for d in tests/fuzz/corpus/"$t" tests/fuzz/regress/"$t"; do
		[ -d "$d" ] && dirs="$dirs $d"
	done
	log=build-fuzz/"$t".log
	start=$(date +%s)
	# shellcheck disable=SC2086
	./build-fuzz/"$t" -max_total_time="$secs" \
		-timeout="${FUZZ_TIMEOUT:-30}" -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/crashes/"$t"/ \
		${FUZZ_SEED:+-seed="$FUZZ_SEED"} ${FUZZ_FLAGS:-} $dirs >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[^ ]*\).*/\1/p')
	if [ "$rc" = 0 ]; then
		st=ok
	else
		st="FAILED (rc $rc, see $log and build-fuzz/crashes/$t/)"
		fail="$fail $t"
	fi
	printf '%-24s %4ss  execs %-9s cov %-6s ft %-7s corp %-12s %s\n' \
		"$t" "$took" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "$st"
done
if [ -n "$fail" ]; then
	echo "make fuzz: crashes in:$fail" >&2
	exit 1
fi
echo "make fuzz: no crash in $# targets ($secs s each)"
