#!/bin/sh
# make_deps.sh -- "make deps X" works on the first try on a fresh machine
# (issue 12, item 1), without really installing anything.
#
# A copy of the build files runs "make deps build/obj/lib/store/pg.o" (the
# object that needs libpq-fe.h, found only through pkg-config) with shims
# on PATH: apt-get only records that it ran, and pkg-config fails -- as if
# it were not installed -- until apt-get has run, then defers to the real
# one.  A Makefile that reads pkg-config while it is parsed compiles
# without the flags and fails; one that reads them when a recipe needs
# them succeeds.  Run serially and with -j2 (deps must finish before any
# compile starts).
# Prints "make-deps: N passed, M failed".
set -u
SRC=$(pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/knytt-deps.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "make-deps: FAIL: $*"; }

REAL_PKGCONFIG=$(command -v pkg-config)
if [ -z "$REAL_PKGCONFIG" ]; then
	echo "make-deps: FAIL: pkg-config is not installed (make deps)"
	exit 1
fi
mkdir -p "$T/shim"
cat >"$T/shim/pkg-config" <<EOF
#!/bin/sh
echo "pkg-config \$*" >>"$T/log"
[ -f "$T/installed" ] || exit 127
exec "$REAL_PKGCONFIG" "\$@"
EOF
cat >"$T/shim/apt-get" <<EOF
#!/bin/sh
echo "apt-get \$*" >>"$T/log"
case "\$*" in *install*) touch "$T/installed" ;; esac
exit 0
EOF
cat >"$T/shim/sudo" <<'EOF'
#!/bin/sh
exec "$@"
EOF
chmod +x "$T/shim/pkg-config" "$T/shim/apt-get" "$T/shim/sudo"

# run NAME MAKEFLAGS...: a fresh copy, a fresh "machine", one make
run() {
	name=$1
	shift
	rm -rf "$T/w" "$T/installed" "$T/log"
	mkdir -p "$T/w"
	cp -R "$SRC/Makefile" "$SRC/include" "$SRC/lib" "$T/w/"
	(cd "$T/w" && PATH="$T/shim:$PATH" make "$@" deps \
		build/obj/lib/store/pg.o) >"$T/out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ -f "$T/w/build/obj/lib/store/pg.o" ]; then
		ok
	else
		bad "$name: make deps failed the first time (exit $rc):" \
			"$(grep -m 2 -i 'error' "$T/out")"
	fi
	# pkg-config was asked only after apt-get install had run
	if awk '/^apt-get .*install/ { inst = 1 }
		/^pkg-config/ && !inst { early = 1 }
		END { exit early }' "$T/log"; then ok; else
		bad "$name: pkg-config read before deps ran: $(head -3 "$T/log")"
	fi
}

run "make deps"
run "make -j2 deps" -j2

echo "make-deps: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
