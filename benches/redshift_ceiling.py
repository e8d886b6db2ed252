#!/usr/bin/env python3
"""How far k-NN redshift regression can go on a mock catalog, by representation.

Scores the held-out protocol of `astrovec train --heldout` (k = 64 nearest neighbours,
distance-weighted, Euclidean on per-feature standardised vectors, 5-fold cross-validation
inside the held-out set) on learned embeddings and on reference representations built
from the catalog itself, so a model's redshift R² can be read against what its inputs
allow:

- `photometry`: noise-free r magnitude and g−r, r−z colours (what a 3-band image shows);
- `photometry + z + properties`: the same plus the true redshift, stellar mass, sSFR,
  half-light radius and bulge fraction (an embedding that holds the redshift exactly as
  one factor among eight);
- `spectrum, 98 bins`: each spectrum scaled to zero mean and unit variance, then averaged
  in the 80-pixel windows the `small` SpecFormer reads;
- `spectrum, 8 principal components` of those scaled spectra;
- `true redshift` alone (the ceiling set by k = 64 among 1,600 neighbours).

Usage:
    python3 benches/redshift_ceiling.py HELDOUT.parquet [NAME=EMBEDDINGS.npy ...]

EMBEDDINGS.npy rows must follow the Parquet file's rows (e.g. from
`astrovec embed --catalog HELDOUT.parquet --modality spectrum --out spec.npy`).
Needs numpy and pyarrow.
"""

import sys

import numpy as np
import pyarrow.parquet as pq

K = 64
FOLDS = 5


def knn_r2(x, z, k=K, folds=FOLDS, seed=0):
    """R² of distance-weighted k-NN regression with `folds`-fold cross-validation."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    fold = np.random.default_rng(seed).integers(0, folds, len(x))
    pred = np.empty(len(x))
    for f in range(folds):
        tr, te = fold != f, fold == f
        mu, sd = x[tr].mean(0), x[tr].std(0)
        sd[sd == 0] = 1.0
        a, b = (x[tr] - mu) / sd, (x[te] - mu) / sd
        out = []
        # Chunks keep the distance matrix small for wide inputs.
        for s in range(0, len(b), 128):
            d = np.sqrt(((b[s:s + 128, None, :] - a[None, :, :]) ** 2).sum(-1))
            idx = np.argpartition(d, k, axis=1)[:, :k]
            w = 1.0 / np.maximum(np.take_along_axis(d, idx, 1), 1e-12)
            out.append((w * z[tr][idx]).sum(1) / w.sum(1))
        pred[te] = np.concatenate(out)
    return 1.0 - ((z - pred) ** 2).sum() / ((z - z.mean()) ** 2).sum()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    cols = ["redshift", "mag_g", "mag_r", "mag_z", "log_stellar_mass", "log_ssfr",
            "half_light_radius_arcsec", "bulge_fraction", "spectrum"]
    try:
        t = pq.read_table(path, columns=cols)
    except Exception as e:  # any reader failure is reported with the file name
        sys.exit(f"{path}: cannot read the columns {cols}: {e}")
    col = {c: t.column(c).to_numpy().astype(np.float64) for c in cols if c != "spectrum"}
    z = col["redshift"]
    # Embedding files are checked before the spectra are decomposed, so a wrong argument
    # fails at once.
    embeddings = []
    for arg in sys.argv[2:]:
        name, _, file = arg.partition("=")
        if not file:
            sys.exit(f"{arg}: expected NAME=EMBEDDINGS.npy")
        emb = np.load(file)
        if emb.ndim != 2 or emb.shape[0] != len(z):
            sys.exit(f"{file}: shape {emb.shape}, expected ({len(z)}, dim) for the catalog's rows")
        embeddings.append((name, emb))
    phot = np.stack([col["mag_r"], col["mag_g"] - col["mag_r"], col["mag_r"] - col["mag_z"]], 1)
    props = np.stack([z, col["log_stellar_mass"], col["log_ssfr"],
                      col["half_light_radius_arcsec"], col["bulge_fraction"]], 1)
    spec = np.stack(t.column("spectrum").to_numpy(zero_copy_only=False)).astype(np.float64)
    spec = (spec - spec.mean(1, keepdims=True)) / np.maximum(spec.std(1, keepdims=True), 1e-6)
    width = 80
    bins = -(-spec.shape[1] // width)
    binned = np.pad(spec, ((0, 0), (0, bins * width - spec.shape[1]))).reshape(len(z), bins, width)
    binned = binned.mean(2)
    centred = spec - spec.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    pcs = u[:, :8] * s[:8]

    rows = [(f"{name} ({emb.shape[1]}-d embeddings)", knn_r2(emb, z)) for name, emb in embeddings]
    rows += [
        ("photometry: r, g-r, r-z (noise-free)", knn_r2(phot, z)),
        ("photometry + z + 4 properties (8 factors)", knn_r2(np.c_[phot, props], z)),
        (f"spectrum, {bins} bins of {width} pixels", knn_r2(binned, z)),
        ("spectrum, 8 principal components", knn_r2(pcs, z)),
        ("true redshift alone", knn_r2(z, z)),
    ]
    print(f"{len(z)} objects, redshift median {np.median(z):.3f}, sd {z.std():.3f}; "
          f"k = {K}, {FOLDS}-fold, standardised, distance-weighted")
    for name, r2 in rows:
        print(f"{r2:7.3f}  {name}")


if __name__ == "__main__":
    main()
