# What run.sh and profile.sh share: paths, ports, the subgate config, the
# bench programs' build, process clean-up. Sourced, not run.

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench_dir")"
log_level="${BENCH_LOG:-warn}"
port_base="${BENCH_PORT_BASE:-18430}"
mock_port=$((port_base + 1))
nginx_port=$((port_base + 2))
subgate_port=$((port_base + 3))
subgate_start_port=$((port_base + 4))
nginx_start_port=$((port_base + 5))
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Builds bench-mock and bench-client; sets $mock and $client.
build_bench_programs() {
  (cd "$bench_dir" && cargo build --release --locked)
  mock="${CARGO_TARGET_DIR:-$bench_dir/target}/release/bench-mock"
  client="${CARGO_TARGET_DIR:-$bench_dir/target}/release/bench-client"
}

# Makes $tmp and stops every PID in $pids, then removes $tmp, on exit.
start_session() {
  tmp="$(mktemp -d /tmp/subgate-bench.XXXXXX)"
  # nginx's workers run as nobody and read their temp paths under here.
  chmod 755 "$tmp"
  pids=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  for port in $mock_port $nginx_port $subgate_port $subgate_start_port $nginx_start_port; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is taken; set BENCH_PORT_BASE"
    fi
  done
}

cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}

# Waits until `GET URL` answers 200.
wait_healthy() {
  local url="$1" i
  for i in $(seq 1 500); do
    curl -sf -o /dev/null "$url" && return 0
    sleep 0.02
  done
  die "$url never answered"
}

# subgate's config: loopback, its own data dir, no client keys, one
# OpenAI-compatible and one Anthropic provider on the mock.
subgate_conf() { # PORT DATA_DIR FILE
  cat >"$3" <<EOF
[server]
host = "127.0.0.1"
port = $1
require_keys = false

[storage]
data_dir = "$2"

[log]
level = "$log_level"

[[providers]]
kind = "openai-compatible"
name = "oai"
base_url = "http://127.0.0.1:$mock_port/v1"
models = ["bench-gpt"]

[[providers]]
kind = "anthropic"
name = "ant"
base_url = "http://127.0.0.1:$mock_port"
models = ["bench-claude"]
EOF
}

# Starts the mock on core 1 and subgate (binary $1) on core 0; sets
# $subgate_pid.
start_mock_and_subgate() { # SUBGATE_BINARY
  taskset -c 1 "$mock" --port "$mock_port" >"$tmp/mock.log" 2>&1 &
  pids+=($!)
  wait_healthy "http://127.0.0.1:$mock_port/healthz"
  subgate_conf "$subgate_port" "$tmp/subgate-data" "$tmp/subgate.toml"
  taskset -c 0 "$1" serve --config "$tmp/subgate.toml" >"$tmp/subgate.log" 2>&1 &
  subgate_pid=$!
  pids+=("$subgate_pid")
  wait_healthy "http://127.0.0.1:$subgate_port/healthz"
}

# The non-streamed request bodies in $tmp: a small chat turn with a
# 20-word answer, in each API, for each provider's model.
write_bodies() {
  local prompt='"Say hello in a few words. [bench chunks=20]"'
  local system='"You are a helpful assistant."'
  local model
  for model in bench-gpt bench-claude; do
    printf '{"model":"%s","max_tokens":1024,"messages":[{"role":"system","content":%s},{"role":"user","content":%s}]}' \
      "$model" "$system" "$prompt" >"$tmp/chat-${model#bench-}.json"
    printf '{"model":"%s","max_tokens":1024,"system":%s,"messages":[{"role":"user","content":%s}]}' \
      "$model" "$system" "$prompt" >"$tmp/messages-${model#bench-}.json"
  done
}

# oha against 127.0.0.1:PORT PATH with body file $tmp/BODY.json, from core 1.
oha_run() { # DURATION-FLAG VALUE CONCURRENCY PORT PATH BODY OUT
  taskset -c 1 oha "$1" "$2" -c "$3" -m POST --no-tui --output-format json \
    -H 'content-type: application/json' -H 'authorization: Bearer unused' \
    -H 'anthropic-version: 2023-06-01' -D "$tmp/$6.json" \
    "http://127.0.0.1:$4$5" >"$7"
}
