#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: first the normal build, then the
# AddressSanitizer + UBSan build. Integration tests start their own PostgreSQL and Store emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
./scripts/build.sh build
(cd build && ctest --output-on-failure -j"$jobs")
./scripts/build.sh build-asan -DESD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
(cd build-asan && ctest --output-on-failure -j"$jobs")
