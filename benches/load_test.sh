#!/usr/bin/env bash
# Load test of `astrovec serve` on loopback: a synthetic collection of COUNT
# objects (precomputed clustered DIM-d image and spectrum embeddings, HNSW built;
# made once by `cargo run --example load_collection`), then `wrk` (Debian package)
# drives image→spectrum searches by random id (k = 10) at 1, 16 and 64 concurrent
# connections for DURATION seconds each. Prints p50/p90/p99 latency (ms), QPS and
# error counts per level, and writes them to $WORK/load_test.json. Exits non-zero
# when any request failed.
#
#   bash benches/load_test.sh                 # 100,000 × 1024-d, 15 s per level
#   COUNT=20000 DURATION=5 bash benches/load_test.sh
#   ASTROVEC_BIN=/path/to/astrovec bash benches/load_test.sh   # no build step
#
# The client shares the machine with the server: on a small machine the numbers
# include wrk's own CPU use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source .ci/setup
COUNT="${COUNT:-100000}"
DIM="${DIM:-1024}"
DURATION="${DURATION:-15}"
LEVELS="${LEVELS:-1 16 64}"
WORK="${WORK:-/tmp/astrovec-load}"
PORT="${PORT:-18080}"
export COUNT
mkdir -p "$WORK"

if ! command -v wrk >/dev/null 2>&1; then
  echo "load test: installing wrk (Debian)" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk >/dev/null
fi

# ASTROVEC_BIN=path uses an already built binary (and an existing collection).
if [ -n "${ASTROVEC_BIN:-}" ]; then
  bin="$ASTROVEC_BIN"
else
  cargo build --release --workspace --examples --bins
  bin="$CARGO_TARGET_DIR/release/astrovec"
fi
db="$WORK/db-$COUNT-$DIM"
if [ ! -d "$db/gal/vectors" ]; then
  rm -rf "$db"; mkdir -p "$db"
  echo "load test: building $COUNT × $DIM-d collection in $db/gal" >&2
  "$CARGO_TARGET_DIR/release/examples/load_collection" "$db/gal" "$COUNT" "$DIM"
fi

"$bin" serve --db "$db" --addr "127.0.0.1:$PORT" >"$WORK/serve.out" 2>"$WORK/serve.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null
# Warm-up: page in the vectors and graphs.
wrk -t1 -c4 -d3s -s benches/load_test.lua "http://127.0.0.1:$PORT" >/dev/null

results="["
failed=0
for c in $LEVELS; do
  t=$(( c < 2 ? 1 : 2 ))
  line=$(wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 30s -s benches/load_test.lua \
    "http://127.0.0.1:$PORT" | grep '^{"requests"')
  echo "clients=$c $line"
  results="$results{\"clients\": $c, \"result\": $line},"
  errs=$(echo "$line" | python3 -c 'import json,sys; e=json.load(sys.stdin)["errors"]; print(sum(e.values()))')
  [ "$errs" -eq 0 ] || failed=1
done
results="${results%,}]"
echo "{\"count\": $COUNT, \"dim\": $DIM, \"duration_s\": $DURATION, \"cpus\": $(nproc), \"levels\": $results}" \
  | python3 -m json.tool > "$WORK/load_test.json"
python3 - "$WORK/load_test.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"\n{r['count']:,} objects × {r['dim']}-d, {r['duration_s']} s per level, {r['cpus']} CPUs")
print(f"{'clients':>8} {'QPS':>9} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'errors':>7}")
for l in r["levels"]:
    x = l["result"]
    print(f"{l['clients']:>8} {x['qps']:>9.1f} {x['p50_ms']:>9.2f} {x['p90_ms']:>9.2f} {x['p99_ms']:>9.2f} {sum(x['errors'].values()):>7}")
PY
kill -TERM $server
wait $server || { echo "server exited non-zero after SIGTERM" >&2; failed=1; }
trap - EXIT
exit $failed
