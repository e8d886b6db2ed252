#!/usr/bin/env bash
# Peer comparison: astrovec vs hnswlib, FAISS (HNSW), qdrant-edge and usearch on the
# same vectors, same machine, same run; writes BENCHMARKS.md's result section.
#
#   bash benches/peers/run.sh                 # 100,000 × 1024 synthetic (the published run)
#   N=20000 bash benches/peers/run.sh         # a quick run while developing
#   EMBEDDINGS=emb.npy bash benches/peers/run.sh   # data set (a): model embeddings
#   EFS=10,16,32,64,128 bash benches/peers/run.sh  # another ef sweep (every engine)
#
# Each configuration's QPS is the best of ASTROVEC_PEERS_RUNS (default 3) passes.
#
# Data and indexes go to $CACHE (default ~/.cache/astrovec-bench); the Python
# engines are installed into a venv there from requirements.txt (pinned versions),
# never into the repository.
set -euo pipefail
peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$peers_dir/../.." && pwd)"
CACHE="${CACHE:-$HOME/.cache/astrovec-bench}"
N="${N:-100000}"
DIM="${DIM:-1024}"
QUERIES="${QUERIES:-1000}"
OUT="${OUT:-$CACHE/BENCHMARKS.section.md}"
mkdir -p "$CACHE"

venv="$CACHE/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$peers_dir/requirements.txt"
py="$venv/bin/python"

if [ -n "${EMBEDDINGS:-}" ]; then
  # Data set (a): default-model embeddings of a mock catalog, e.g.
  #   astrovec mock --count 101000 --out mock.parquet, then embed the images with
  #   the default model (models/astrovec-small/) into an .npy.
  data="$CACHE/emb-$(basename "$EMBEDDINGS" .npy)"
  title="Default-model embeddings ($(basename "$EMBEDDINGS"))"
  [ -f "$data/gt.npy" ] || "$py" "$peers_dir/peers.py" embeddings --embeddings "$EMBEDDINGS" --out "$data" --queries "$QUERIES"
else
  data="$CACHE/synth-$N-$DIM"
  title="Synthetic clustered set, $N × $DIM"
  [ -f "$data/gt.npy" ] || "$py" "$peers_dir/peers.py" gen --out "$data" --n "$N" --dim "$DIM" --queries "$QUERIES"
fi
results="$data/results"
mkdir -p "$results"

# astrovec (Rust, release build of the peers bench target).
cd "$root"
source .ci/setup
bin=$(cargo build --release --workspace --bench peers --message-format=json 2>/dev/null \
  | "$py" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "peers" and m.get("executable"):
        print(m["executable"])')
efs="${EFS:-10,12,16,24,32,48,64,96,128,192,256,384,512}"
ASTROVEC_PEERS_DATA="$data" ASTROVEC_PEERS_OUT="$results/astrovec.json" ASTROVEC_PEERS_WORK="$CACHE" \
  ASTROVEC_PEERS_EFS="$efs" "$bin"

# The peers, one process each.
"$py" "$peers_dir/peers.py" peers --data "$data" --work "$CACHE/work" --results "$results" --efs "$efs"

"$py" "$peers_dir/peers.py" report --data "$data" --title "$title" --out "$OUT" "$results"/*.json
{
  echo
  echo "Machine:"
  echo '```'
  "$py" "$peers_dir/peers.py" machine
  echo '```'
} >> "$OUT"
echo "run.sh: wrote $OUT (paste into BENCHMARKS.md)" >&2
