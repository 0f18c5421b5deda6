#!/usr/bin/env bash
# Build TimescaleDB once from the vendored release source into a private copy of PostgreSQL 15,
# cached by version and checksum, and print that copy's bin directory.
#
# The machine's PostgreSQL stays plain: nothing is installed into /usr/lib/postgresql or
# /usr/share/postgresql (a cluster that sees TimescaleDB without preloading it fails
# CREATE EXTENSION fatally). PostgreSQL finds its share/ and lib/ relative to its own binary, so
# the copy under the cache runs with its own extension directory.
#
#   scripts/timescaledb.sh          build if needed, print <cache>/usr/lib/postgresql/15/bin
#   scripts/timescaledb.sh --check  print the bin directory if already built, else fail
#
# Test-setup only: the product never reads the vendored tarball at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=2.28.3
SHA256=3e4ff431f64f9841bfeec76888ad48f8139646b80ec77404bba770059f303085
PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
CACHE="${OXY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oxy}/timescaledb-$VERSION-${SHA256:0:12}"
BIN="$CACHE/usr/lib/postgresql/$PG_MAJOR/bin"

if [ -f "$CACHE/.built" ]; then
    echo "$BIN"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "TimescaleDB $VERSION is not built: run scripts/timescaledb.sh" >&2
    exit 1
fi

tarball="${OXY_TIMESCALEDB_TARBALL:-../shared/vendor/timescaledb-$VERSION.tar.gz}"
if [ ! -f "$tarball" ]; then
    echo "TimescaleDB source not found at $tarball (set OXY_TIMESCALEDB_TARBALL)" >&2
    exit 1
fi
if [ "$(sha256sum "$tarball" | cut -d' ' -f1)" != "$SHA256" ]; then
    echo "$tarball: sha256 is not $SHA256" >&2
    exit 1
fi

need=()
[ -x "$PG_CONFIG" ] || need+=(postgresql-$PG_MAJOR)
[ -f "/usr/include/postgresql/$PG_MAJOR/server/postgres.h" ] || need+=(postgresql-server-dev-$PG_MAJOR)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || need+=(build-essential)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -ne 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing build packages: ${need[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "building TimescaleDB needs: ${need[*]}" >&2
        echo "  Debian/Ubuntu: sudo apt-get install ${need[*]}" >&2
        exit 1
    fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/oxy-timescaledb-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
echo "building TimescaleDB $VERSION into $CACHE (a few minutes, once)" >&2
# A relocatable copy of PostgreSQL 15 (binaries, libraries, share), then TimescaleDB into it.
mkdir -p "$stage/usr/lib/postgresql" "$stage/usr/share/postgresql"
cp -a "/usr/lib/postgresql/$PG_MAJOR" "$stage/usr/lib/postgresql/"
cp -a "/usr/share/postgresql/$PG_MAJOR" "$stage/usr/share/postgresql/"
tar -xzf "$tarball" -C "$work"
(
    cd "$work/timescaledb-$VERSION"
    ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF \
        -DPG_CONFIG="$PG_CONFIG" >"$work/bootstrap.log" 2>&1 || { tail -40 "$work/bootstrap.log" >&2; exit 1; }
    cd build
    make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -60 "$work/make.log" >&2; exit 1; }
    make install DESTDIR="$stage" >"$work/install.log" 2>&1 || { tail -40 "$work/install.log" >&2; exit 1; }
)
# Prove the copy resolves its own directories before publishing it.
stage_bin="$stage/usr/lib/postgresql/$PG_MAJOR/bin"
[ "$("$stage_bin/pg_config" --sharedir)" = "$stage/usr/share/postgresql/$PG_MAJOR" ] || {
    echo "the PostgreSQL copy does not resolve its share directory relative to itself" >&2
    exit 1
}
[ -f "$stage/usr/share/postgresql/$PG_MAJOR/extension/timescaledb.control" ]
ls "$stage/usr/lib/postgresql/$PG_MAJOR/lib/timescaledb-$VERSION.so" >/dev/null
touch "$stage/.built"
mkdir -p "$(dirname "$CACHE")"
rm -rf "$CACHE"
# pg_config reports paths of where it runs from, so the move keeps the copy valid.
mv "$stage" "$CACHE"
echo "$BIN"
