#!/usr/bin/env bash
# System packages the test suite needs. On Debian/Ubuntu as root they are installed; elsewhere
# this prints exactly what to install and fails.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)

# To build TimescaleDB for the second test pass (scripts/timescaledb.sh): installed with the rest
# on Debian as root; elsewhere only named, since the plain PostgreSQL pass runs without them.
build=()
[ -f /usr/include/postgresql/15/server/postgres.h ] || build+=(postgresql-server-dev-15)
command -v cmake >/dev/null 2>&1 || build+=(cmake)
command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || build+=(build-essential)
[ -f /usr/include/openssl/ssl.h ] || build+=(libssl-dev)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    need+=("${build[@]}")
elif [ ${#build[@]} -ne 0 ]; then
    echo "the TimescaleDB test pass needs these packages to build it: ${build[*]}" >&2
fi
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    exit 0
fi
echo "the test suite needs these system packages: ${need[*]}" >&2
echo "  Debian/Ubuntu: sudo apt-get install ${need[*]}" >&2
echo "  Fedora: sudo dnf install mosquitto socat openssl procps-ng nodejs npm chromium" >&2
echo "  macOS: brew install mosquitto socat openssl node chromium" >&2
exit 1
