#!/usr/bin/env bash
# Runs every fuzz target for a while each: a duration (`make fuzz`: 60s) or an
# iteration count (`make fuzz-short`, in make test: 20000x, which has no
# deadline for a loaded machine to overrun).
# Seed corpora are the f.Add calls and testdata/fuzz/<Target>/ (committed:
# a failure the fuzzer finds is written there and replays in `go test`).
#
#   scripts/fuzz.sh [FUZZTIME]   (e.g. 60s or 20000x; default 20000x)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20000x}
targets=(
  "./internal/jsonany FuzzPackArgs"      # parameter encoding
  "./internal/jsonany FuzzUnpack"        # result decoding
  "./internal/sperr FuzzFromPython"      # error-payload parsing
  "./actors/worker FuzzParseReady"       # ready-file parsing
  "./apps/snakepit FuzzConfig"           # config parsing and validation
  "./actors/registry/cleanup FuzzDecideRogue" # rogue-process matching
)
for t in "${targets[@]}"; do
  read -r pkg name _ <<<"$t"
  echo "fuzz $name ($pkg) for $fuzztime"
  # Go's fuzzer can end a timed run with "context deadline exceeded" while
  # its workers are still starting (golang/go#48127): that, and only that,
  # is retried once.
  for attempt in 1 2; do
    if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
      grep -v '^fuzz: elapsed' <<<"$out"
      break
    fi
    if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
      echo "fuzz $name: the fuzzer's own deadline (no failing input); once more"
      continue
    fi
    echo "$out"
    exit 1
  done
done
