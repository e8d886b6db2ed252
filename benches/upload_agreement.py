#!/usr/bin/env python3
"""Does a user who uploads images get the numbers of the ingested collection?

For a served image collection with a categorical label (e.g. the Galaxy Zoo 2 JPEGs with
`spiral` yes/no), objects are split into folds by a hash of the id. For each object of a
fold, the server searches the other folds twice through its public API:

  * by id        -- the stored embedding (what the ingest computed) is the query;
  * by upload    -- the image file itself is uploaded (base64 in the search body, as the web
                    page sends it) and embedded by the server.

Each search returns the k nearest objects of the other folds (cosine); the label is their
similarity-weighted vote. The script prints the vote accuracy per fold for both ways, their
means with the spread over folds, the largest per-fold difference, and the share of uploads
whose neighbour list equals the by-id list. Only the query's way in differs, so any gap is
a difference between the upload path and the ingest path.

Usage:
  python3 benches/upload_agreement.py --url http://127.0.0.1:8080 --collection gz2 \
      --images DIR --labels labels.csv --label spiral [--folds 5] [--k 64] [--out result.json]

`labels.csv` has the columns `id` and the label; image files are named by id
(`<id>.jpg`, `.jpeg` or `.png`), anywhere under DIR. Standard library only.
"""

import argparse
import base64
import csv
import json
import math
import statistics
import sys
import urllib.request
from pathlib import Path

MASK = (1 << 64) - 1


def fold_of(obj_id, folds):
    """SplitMix64 of the id (the first output of a generator seeded with it), mod folds."""
    z = (obj_id + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return (z ^ (z >> 31)) % folds


def post(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)


def vote(results, labels):
    weights = {}
    for hit in results:
        lab = labels.get(hit["id"])
        if lab is not None:
            weights[lab] = weights.get(lab, 0.0) + max(hit["score"], 0.0)
    return max(weights, key=weights.get) if weights else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--images", required=True, type=Path)
    ap.add_argument("--labels", required=True, type=Path)
    ap.add_argument("--label", required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()

    with open(a.labels, newline="") as f:
        labels = {int(r["id"]): r[a.label] for r in csv.DictReader(f) if r.get(a.label)}
    files = {}
    for p in a.images.rglob("*"):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stem.isdigit():
            files[int(p.stem)] = p
    ids = sorted(i for i in labels if i in files)
    if not ids:
        sys.exit("no labelled image files found")
    search = f"{a.url.rstrip('/')}/v1/collections/{a.collection}/search"
    per_fold = []
    same_lists = 0
    for fold in range(a.folds):
        held = [i for i in ids if fold_of(i, a.folds) == fold]
        # Neighbours come from the other folds only.
        others = "not id in (" + ", ".join(str(i) for i in held) + ")"
        right = {"id": 0, "upload": 0}
        for i in held:
            by_id = post(search, {"id": i, "from": "image", "to": "image", "k": a.k, "filter": others})
            kind = "png" if files[i].suffix.lower() == ".png" else "jpeg"
            img = {kind: base64.b64encode(files[i].read_bytes()).decode()}
            up = post(search, {"image": img, "to": "image", "k": a.k, "filter": others})
            right["id"] += vote(by_id["results"], labels) == labels[i]
            right["upload"] += vote(up["results"], labels) == labels[i]
            same_lists += [h["id"] for h in by_id["results"]] == [h["id"] for h in up["results"]]
        per_fold.append({"fold": fold, "n": len(held),
                         "by_id": right["id"] / len(held), "by_upload": right["upload"] / len(held)})
        print(f"fold {fold}: n = {len(held)}, accuracy by id {per_fold[-1]['by_id']:.4f}, "
              f"by upload {per_fold[-1]['by_upload']:.4f}", flush=True)

    def summary(key):
        xs = [f[key] for f in per_fold]
        return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

    (m_id, s_id), (m_up, s_up) = summary("by_id"), summary("by_upload")
    worst = max(abs(f["by_id"] - f["by_upload"]) for f in per_fold)
    result = {
        "collection": a.collection, "label": a.label, "objects": len(ids), "folds": a.folds,
        "k": a.k, "per_fold": per_fold,
        "accuracy_by_id": {"mean": m_id, "sd": s_id},
        "accuracy_by_upload": {"mean": m_up, "sd": s_up},
        "largest_fold_difference": worst,
        "identical_neighbour_lists": same_lists / len(ids),
    }
    print(f"{a.label} accuracy over {a.folds} folds (k = {a.k}): by id {m_id:.4f} ± {s_id:.4f}, "
          f"by upload {m_up:.4f} ± {s_up:.4f}; largest per-fold difference {worst:.4f}; "
          f"identical neighbour lists {result['identical_neighbour_lists']:.4f}")
    if a.out:
        a.out.write_text(json.dumps(result, indent=2) + "\n")
    # The two ways in must give the same numbers: a fold differing by more than 0.01 fails.
    if not math.isfinite(worst) or worst > 0.01:
        sys.exit(f"the upload path and the ingest path disagree by {worst:.4f} in a fold")


if __name__ == "__main__":
    main()
