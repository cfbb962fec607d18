#!/usr/bin/env bash
# Runs every fuzz target briefly on the stable toolchain (no sanitizer).
#   fuzz/run.sh            # 60 seconds per target
#   fuzz/run.sh 600 sse    # ten minutes on one target
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler
# for libFuzzer. Crashes land in fuzz/artifacts/<target>/; the corpus grows in
# fuzz/corpus/<target>/ (both ignored by git). Inputs that once failed are
# kept in fuzz/regressions/<target>/ and seed every run, as do the hand-made
# inputs in fuzz/seeds/<target>/ for targets no fixture feeds.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

fixtures=../crates/protocol/fixtures

# Starts a target's corpus from the protocol fixtures (request bodies as
# they are, streams behind two bytes that choose the chunk cuts) and from
# the committed regressions, inputs that once failed, and hand-made seeds.
seed() {
  local target="$1" dir="corpus/$1" dialect
  mkdir -p "$dir"
  if [ -d "regressions/$target" ]; then
    cp regressions/"$target"/* "$dir/"
  fi
  if [ -d "seeds/$target" ]; then
    cp seeds/"$target"/* "$dir/"
  fi
  case "$target" in
    request_*)
      dialect="${target#request_}"
      cp "$fixtures/$dialect/request.json" "$dir/seed-request.json"
      ;;
    stream_*)
      dialect="${target#stream_}"
      { printf '\x06\x1f'; cat "$fixtures/$dialect/stream.sse"; } >"$dir/seed-stream"
      ;;
    sse)
      # Only the dialects that stream SSE (Kiro's stream is binary).
      for stream in "$fixtures"/*/stream.sse; do
        dialect="$(basename "$(dirname "$stream")")"
        { printf '\x02\x0b'; cat "$stream"; } >"$dir/seed-$dialect"
      done
      ;;
    config)
      # The example as shipped, beside the copy in seeds/config/ (which
      # may be older).
      cp ../crates/config/config.example.toml "$dir/seed-example.toml"
      sed 's/^# //' ../crates/config/config.example.toml >"$dir/seed-example-uncommented.toml"
      ;;
  esac
}

for target in "${targets[@]}"; do
  printf '\n== %s (%ss)\n' "$target" "$seconds"
  seed "$target"
  cargo fuzz run "$target" -s none "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=16384 -print_final_stats=1
done
