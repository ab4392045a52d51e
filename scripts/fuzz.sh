#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each for a while.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; targets: all of them)
#
# Each fuzzer starts from a scratch copy of fuzz/corpus/<target> in build-fuzz/fuzz-work/<target>/corpus,
# so the committed corpus never grows by itself; crash, leak, timeout and oom inputs land in
# build-fuzz/fuzz-work/<target>/artifacts. Exits non-zero if any target failed, naming the input files.
# See fuzz/README.md for what each target checks and how to add a crash to the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(collections store_date store_id_key uploaded_key_check config)
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2; }

# Input size limits: a little above the largest real input of each kind.
declare -A max_len=([collections]=8192 [store_date]=64 [store_id_key]=4096 [uploaded_key_check]=4096 [config]=8192)

# The build's own dependencies, then clang and its libFuzzer/sanitizer runtimes (Debian 12).
./scripts/install-deps.sh
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build=build-fuzz
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:FILEPATH=.*clang++' "$build/CMakeCache.txt"; then
  echo "$build/ was configured with another compiler; remove it first" >&2
  exit 2
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DESD_FUZZ=ON -DESD_BUILD_TESTS=OFF >/dev/null
fuzzers=()
for t in "${targets[@]}"; do
  [[ -n ${max_len[$t]:-} ]] || { echo "unknown target $t (known: ${!max_len[*]})" >&2; exit 2; }
  fuzzers+=("esd_fuzz_$t")
done
cmake --build "$build" -j"${JOBS:-2}" --target "${fuzzers[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -R "fuzz/corpus/$t/." "$work/corpus/"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  echo "=== $t: ${seconds}s, max_len ${max_len[$t]}, log $work/fuzz.log"
  # One process, one job at a time: the machine's cores are shared.
  rc=0
  "$build/fuzz/esd_fuzz_$t" "$work/corpus" "${dict[@]}" -max_len="${max_len[$t]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$work/fuzz.log" 2>&1 || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/fuzz.log" | tail -1 || true)
  summary+=("$t: ${done_line:-no DONE line (exit $rc)}")
  artifacts=$(find "$work/artifacts" -type f | sort)
  if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
    failed+=("$t")
    echo "!!! $t failed (exit $rc); last lines of $work/fuzz.log:" >&2
    tail -n 40 "$work/fuzz.log" >&2
    for a in $artifacts; do echo "!!! $t: input: $a" >&2; done
  fi
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]} (inputs under $build/fuzz-work/<target>/artifacts)" >&2
  exit 1
fi
echo "all targets ran ${seconds}s without a crash"
