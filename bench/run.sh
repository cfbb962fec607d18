#!/usr/bin/env bash
# subgate's overhead benchmark, one command from a fresh clone:
#   bench/run.sh
# Installs what it lacks (oha, nginx), builds subgate (release) and the
# bench's own mock and clients, runs subgate and nginx on core 0 and the
# mock and load generators on core 1, and prints one table, also written to
# bench/results/latest.md. See bench/README.md for what each figure means.
#
# Knobs (environment): BENCH_SECONDS (5: each load run), BENCH_STREAMS
# (200), BENCH_BURST_STREAMS (ten times that), BENCH_HELD (1000), BENCH_STARTS (9), BENCH_LOG (subgate's log
# level, `warn`), BENCH_PORT_BASE (18430: six ports from there).
# Load goes to 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail

seconds="${BENCH_SECONDS:-5}"
stream_count="${BENCH_STREAMS:-200}"
# A burst is over in a blink: ten times the streams give /proc's 10 ms CPU
# ticks enough to count.
burst_count="${BENCH_BURST_STREAMS:-$((stream_count * 10))}"
held="${BENCH_HELD:-1000}"
starts="${BENCH_STARTS:-9}"
hz="$(getconf CLK_TCK)"
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"

# --- what the machine lacks ------------------------------------------------

step "tools"
if ! command -v oha >/dev/null 2>&1; then
  cargo install oha --locked
fi
if ! command -v taskset >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux
fi
nginx_bin="$(command -v nginx || true)"
[ -n "$nginx_bin" ] || [ ! -x /usr/sbin/nginx ] || nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
  # The package would start its own service on port 80; a policy-rc.d that
  # says no keeps it down (only while installing, and only if none exists).
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    made_policy=1
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light ||
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
  [ -z "$made_policy" ] || as_root rm -f "$policy"
  nginx_bin=/usr/sbin/nginx
fi
oha --version >&2
"$nginx_bin" -v

# --- builds ----------------------------------------------------------------

step "build: subgate (release) and the bench programs"
(cd "$root" && cargo build --release --locked -p subgate --bin subgate)
build_bench_programs
subgate="${CARGO_TARGET_DIR:-$root/target}/release/subgate"

# --- processes -------------------------------------------------------------

start_session
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((held * 3 + 100)) ] || die "ulimit -n is $(ulimit -n); $((held * 3 + 100)) needed for $held held streams"

nginx_conf() { # PORT DIR
  local port="$1" dir="$2"
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  upstream mock {
    server 127.0.0.1:$mock_port;
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = /healthz { return 200 "ok\n"; }
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Pass bytes on as they come, as subgate does (SSE needs it).
      proxy_buffering off;
    }
  }
}
EOF
}

# Other work on the machine skews everything; the table says how busy it was.
load_before="$(cut -d' ' -f1 /proc/loadavg)"
step "start: mock (core 1), subgate and nginx (core 0)"
start_mock_and_subgate "$subgate"
nginx_conf "$nginx_port" "$tmp/nginx"
taskset -c 0 "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_healthy "http://127.0.0.1:$nginx_port/healthz"
nginx_pids=("$nginx_pid" $(cat "/proc/$nginx_pid/task/$nginx_pid/children"))

sleep 1

# --- measuring helpers -----------------------------------------------------

raw="$tmp/raw.txt"
: >"$raw"
record() { printf '%s %s\n' "$1" "$2" >>"$raw"; }
# Records each key=value of LINE as PREFIX.key.
record_line() { # PREFIX LINE
  local pair
  for pair in $2; do
    record "$1.${pair%%=*}" "${pair#*=}"
  done
}

cpu_ticks() { # PID… → user + system ticks, all threads
  local pid total=0 ticks
  for pid in "$@"; do
    ticks="$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')"
    total=$((total + ticks))
  done
  echo "$total"
}

rss_kib() { # PID… → VmRSS summed
  local pid total=0 kib
  for pid in "$@"; do
    kib="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
    total=$((total + kib))
  done
  echo "$total"
}

record rss.subgate.idle_kib "$(rss_kib "$subgate_pid")"
record rss.nginx.idle_kib "$(rss_kib "${nginx_pids[@]}")"

write_bodies

# NAME → "port path body-file api model proxy-pids…"
declare -A paths=(
  [direct_oai]="$mock_port /v1/chat/completions chat-gpt openai bench-gpt"
  [direct_ant]="$mock_port /v1/messages messages-claude anthropic bench-claude"
  [nginx]="$nginx_port /v1/chat/completions chat-gpt openai bench-gpt ${nginx_pids[*]}"
  [sg_pass]="$subgate_port /v1/chat/completions chat-gpt openai bench-gpt $subgate_pid"
  [sg_a2o]="$subgate_port /v1/messages messages-gpt anthropic bench-gpt $subgate_pid"
  [sg_o2a]="$subgate_port /v1/chat/completions chat-claude openai bench-claude $subgate_pid"
)
order=(direct_oai direct_ant nginx sg_pass sg_a2o sg_o2a)

# --- non-streamed ----------------------------------------------------------

for name in "${order[@]}"; do
  read -r port path body _ _ proxy <<<"${paths[$name]}"
  step "non-streamed: $name"
  oha_run -z 1s 16 "$port" "$path" "$body" "$tmp/warm.json"
  for c in 1 16 64; do
    before=0
    [ -z "$proxy" ] || before="$(cpu_ticks $proxy)"
    oha_run -z "${seconds}s" "$c" "$port" "$path" "$body" "$tmp/oha.json"
    if [ -n "$proxy" ]; then
      record "ns.$name.c$c.cpu_us" $((($(cpu_ticks $proxy) - before) * 1000000 / hz))
    fi
    line="$("$client" oha "$tmp/oha.json")"
    printf '  c=%-3s %s\n' "$c" "$line" >&2
    record_line "ns.$name.c$c" "$line"
  done
done

# --- streams ---------------------------------------------------------------

record st.streams "$stream_count"
record st.chunks 200
record st.gap_ms 1
record st.concurrency 16
record st_short.chunks 10
record st_burst.chunks 200
record st_burst.streams "$burst_count"
for name in "${order[@]}"; do
  read -r port _ _ api model proxy <<<"${paths[$name]}"
  step "streams: $name"
  for set in st_short st st_burst; do
    chunks=200 gap=1 count="$stream_count"
    case "$set" in
      st_short) chunks=10 ;;
      st_burst) gap=0 count="$burst_count" ;;
    esac
    before=0
    [ -z "$proxy" ] || before="$(cpu_ticks $proxy)"
    line="$(taskset -c 1 "$client" stream --url "http://127.0.0.1:$port" --api "$api" \
      --model "$model" --streams "$count" --concurrency 16 --chunks "$chunks" --gap-ms "$gap")"
    if [ -n "$proxy" ]; then
      record "$set.$name.cpu_us" $((($(cpu_ticks $proxy) - before) * 1000000 / hz))
    fi
    printf '  %-8s %s\n' "$set" "$line" >&2
    record_line "$set.$name" "$line"
  done
done

sleep 1
record rss.subgate.after_load_kib "$(rss_kib "$subgate_pid")"
record rss.nginx.after_load_kib "$(rss_kib "${nginx_pids[@]}")"

# --- held streams ----------------------------------------------------------

hold_streams() { # NAME PORT PID…
  local name="$1" port="$2" ready="$tmp/ready-$1" i
  shift 2
  step "held streams: $held through $name"
  record "rss.$name.before_hold_kib" "$(rss_kib "$@")"
  taskset -c 1 "$client" hold --url "http://127.0.0.1:$port" --api openai --model bench-gpt \
    --streams "$held" --hold-secs 120 --ready-file "$ready" >/dev/null &
  local holder=$!
  pids+=("$holder")
  for i in $(seq 1 1800); do
    [ ! -s "$ready" ] || break
    sleep 0.1
  done
  [ -s "$ready" ] || die "the held streams never opened"
  sleep 1
  record "rss.$name.held_kib" "$(rss_kib "$@")"
  record_line "hold.$name" "$(cat "$ready")"
  printf '  %s, RSS %s → %s KiB\n' "$(cat "$ready")" \
    "$(awk -v k="rss.$name.before_hold_kib" '$1 == k {print $2}' "$raw")" \
    "$(awk -v k="rss.$name.held_kib" '$1 == k {print $2}' "$raw")" >&2
  kill "$holder"
  wait "$holder" 2>/dev/null || true
  sleep 2
}
hold_streams subgate "$subgate_port" "$subgate_pid"
hold_streams nginx "$nginx_port" "${nginx_pids[@]}"

# --- start-up --------------------------------------------------------------

step "start-up: subgate and nginx, $starts starts each"
subgate_conf "$subgate_start_port" "$tmp/startup-data" "$tmp/startup.toml"
line="$("$client" startup --port "$subgate_start_port" --runs "$starts" -- \
  taskset -c 0 "$subgate" serve --config "$tmp/startup.toml")"
printf '  subgate %s\n' "$line" >&2
record_line startup.subgate "$line"
nginx_conf "$nginx_start_port" "$tmp/nginx-start"
line="$("$client" startup --port "$nginx_start_port" --runs "$starts" -- \
  taskset -c 0 "$nginx_bin" -p "$tmp/nginx-start" -c "$tmp/nginx-start/nginx.conf" -e "$tmp/nginx-start/error.log")"
printf '  nginx %s\n' "$line" >&2
record_line startup.nginx "$line"

# --- the table -------------------------------------------------------------

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
record meta.date "$(date -u +%Y-%m-%d)"
record meta.cpu "$(nproc) × $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
record meta.commit "$commit"
record meta.nginx "$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
record meta.oha "$(oha --version | awk '{print $2}')"
record meta.log_level "$log_level"
record meta.seconds "$seconds"
record meta.load "$load_before at the start, $(cut -d' ' -f1 /proc/loadavg) at the end"

mkdir -p "$bench_dir/results"
cp "$raw" "$bench_dir/results/latest.raw"
step "results (bench/results/latest.md)"
"$client" report "$raw" "$bench_dir/results/latest.md"
