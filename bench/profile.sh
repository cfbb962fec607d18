#!/usr/bin/env bash
# Where subgate spends its CPU, sampled with perf:
#   bench/profile.sh
# (a) non-streamed pass-through (Chat client → Chat upstream), (b) the same
# translated (Messages client → Chat upstream) and (c) translated streaming
# (Messages client → Chat upstream, 200 chunks), paced 1 ms apart and (d)
# in a burst.
# Builds a profiling subgate (release, debug info, frame pointers) into
# $BENCH_PROFILE_TARGET (default target/profiling, or under
# $CARGO_TARGET_DIR), runs the mock and subgate pinned as run.sh does,
# records subgate with `perf record` over a fixed number of requests, and
# writes the hottest functions to bench/results/profile-*.txt. Run
# bench/run.sh once first (it installs oha).
#
# Knobs: BENCH_PROFILE_REQUESTS (50000), BENCH_PROFILE_STREAMS (400).
set -euo pipefail
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
requests="${BENCH_PROFILE_REQUESTS:-50000}"
streams="${BENCH_PROFILE_STREAMS:-400}"
target="${BENCH_PROFILE_TARGET:-${CARGO_TARGET_DIR:-$root/target}/profiling}"

step "tools"
command -v oha >/dev/null 2>&1 || die "oha is missing: run bench/run.sh first"
if ! command -v perf >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf
fi

step "build: profiling subgate into $target"
(cd "$root" && CARGO_TARGET_DIR="$target" CARGO_PROFILE_RELEASE_DEBUG=limited \
  CARGO_PROFILE_RELEASE_STRIP=none RUSTFLAGS="-C force-frame-pointers=yes" \
  cargo build --release --locked -p subgate --bin subgate)
build_bench_programs

start_session
ulimit -n 65536 2>/dev/null || true
start_mock_and_subgate "$target/release/subgate"
write_bodies
mkdir -p "$bench_dir/results"

# Context switches of subgate's threads, summed by thread name.
switches() {
  local task
  for task in /proc/"$subgate_pid"/task/*; do
    printf '%s %s\n' "$(tr ' ' _ <"$task/comm")" \
      "$(awk '/ctxt_switches/ {n += $2} END {print n}' "$task/status")"
  done | awk '{n[$1] += $2} END {for (k in n) print k, n[k]}' | sort
}

# perf report without its column padding.
report() { perf report -i "$1" --stdio "${@:2}" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//; s/ *$//'; }

# Records subgate while COMMAND… runs, then writes the flat (self time) and
# inclusive profiles to bench/results/profile-NAME.txt (perf's data beside
# it, for `perf report -i`).
profile() { # NAME COMMAND…
  local name="$1" data="$bench_dir/results/profile-$1.perf" out="$bench_dir/results/profile-$1.txt"
  shift
  step "profile: $name"
  "$@" >/dev/null # warm-up: connections, caches
  switches >"$tmp/switches-before"
  perf record -q -F 2999 -g -p "$subgate_pid" -o "$data" 2>/dev/null &
  local recorder=$!
  pids+=("$recorder")
  sleep 0.5
  "$@" >"$tmp/$name.out"
  kill -INT "$recorder"
  wait "$recorder" 2>/dev/null || true
  switches >"$tmp/switches-after"
  {
    printf '# %s: %s\n' "$name" "$*"
    cat "$tmp/$name.out"
    printf '\n# context switches during the run, by thread\n'
    join "$tmp/switches-before" "$tmp/switches-after" | awk '{print $1, $3 - $2}'
    printf '\n# by shared object (%% of samples of the subgate process)\n'
    report "$data" --no-children -g none --sort dso | sed -n '1,12p'
    printf '\n# self time by symbol\n'
    report "$data" --no-children -g none --sort dso,symbol --percent-limit 0.5
    printf '\n# self time, subgate'"'"'s own code only (%% of all samples)\n'
    report "$data" --no-children -g none --dsos subgate --sort symbol --percent-limit 0.3
    printf '\n# inclusive time (children)\n'
    report "$data" --children -g none --sort symbol --percent-limit 3 | sed -n '1,80p'
  } >"$out"
  sed -n '1,60p' "$out" >&2
}

profile pass oha_run -n "$requests" 16 "$subgate_port" /v1/chat/completions chat-gpt /dev/null
profile translated oha_run -n "$requests" 16 "$subgate_port" /v1/messages messages-gpt /dev/null
profile stream taskset -c 1 "$client" stream --url "http://127.0.0.1:$subgate_port" --api anthropic \
  --model bench-gpt --streams "$streams" --concurrency 16 --chunks 200 --gap-ms 1
profile stream-burst taskset -c 1 "$client" stream --url "http://127.0.0.1:$subgate_port" --api anthropic \
  --model bench-gpt --streams "$((streams * 10))" --concurrency 16 --chunks 200 --gap-ms 0
