#!/usr/bin/env python3
"""Peer comparison for astrovec's vector search: data, peer engines, report.

Subcommands (benches/peers/run.sh runs them in order):

  gen     write a seeded clustered data set (base, held-out queries, a uniform
          attribute for filters) and its exact ground truth as .npy files
  peers   build and query hnswlib, FAISS (IndexHNSWFlat), qdrant-edge and usearch
          on those files; one JSON result file per engine
  report  merge the peers' and astrovec's (benches/peers/astrovec.rs) JSON results
          into BENCHMARKS.md

Metrics follow ann-benchmarks: recall@10 against exact ground truth, queries per
second across `ef`, build time, index size. Every engine gets the same vectors,
the same HNSW parameters (M = 16, ef_construction = 200) and inner product on
unit vectors (cosine).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

K = 10
M = 16
EF_CONSTRUCTION = 200
EFS = [10, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
# Filter selectivities: the attribute `u` is uniform in [0, 1), so `u < s` keeps s.
SELECTIVITIES = [0.1, 0.01]


# ---------------------------------------------------------------------- data


def gen(args):
    """Seeded Gaussian mixture (like real embeddings: clustered, not uniform),
    L2-normalised; queries drawn from the same mixture but not in the base."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)

    def sample(n):
        x = np.empty((n, args.dim), dtype=np.float32)
        for s in range(0, n, 10000):
            e = min(n, s + 10000)
            c = rng.integers(0, args.clusters, e - s)
            x[s:e] = centres[c] + args.sigma * rng.standard_normal((e - s, args.dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    base = sample(args.n)
    queries = sample(args.queries)
    u = rng.random(args.n, dtype=np.float32)
    np.save(out / "base.npy", base)
    np.save(out / "queries.npy", queries)
    np.save(out / "attr_u.npy", u)
    write_truth(out, base, queries, u)
    (out / "meta.json").write_text(json.dumps({
        "kind": "synthetic Gaussian mixture",
        "n": args.n, "dim": args.dim, "queries": args.queries,
        "clusters": args.clusters, "sigma": args.sigma, "seed": args.seed,
    }, indent=1))
    print(f"gen: wrote {args.n} x {args.dim} base, {args.queries} queries to {out}")


def exact_top_k(base, queries, k, allowed=None):
    """Exact top-k by inner product (ties broken by lower id), blockwise."""
    ids = np.empty((len(queries), k), dtype=np.int32)
    for s in range(0, len(queries), 100):
        scores = queries[s:s + 100] @ base.T
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        for i, row in enumerate(part):
            order = sorted(row, key=lambda j: (-scores[i, j], j))
            ids[s + i] = order
    return ids


def write_truth(out, base, queries, u):
    np.save(out / "gt.npy", exact_top_k(base, queries, K))
    for s in SELECTIVITIES:
        np.save(out / f"gt_u{s}.npy", exact_top_k(base, queries, K, allowed=u < s))


def from_embeddings(args):
    """Hook for data set (a): default-model embeddings of a mock catalog. `emb` is
    an .npy of embeddings (e.g. from `astrovec embed`); the last `queries` rows are
    held out as queries."""
    emb = np.load(args.embeddings).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base, queries = emb[:-args.queries], emb[-args.queries:]
    u = np.random.default_rng(args.seed).random(len(base), dtype=np.float32)
    np.save(out / "base.npy", base)
    np.save(out / "queries.npy", queries)
    np.save(out / "attr_u.npy", u)
    write_truth(out, base, queries, u)
    (out / "meta.json").write_text(json.dumps({
        "kind": f"model embeddings ({args.embeddings})",
        "n": len(base), "dim": base.shape[1], "queries": len(queries), "seed": args.seed,
    }, indent=1))


# --------------------------------------------------------------------- engines


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recall(found, truth):
    hit = 0
    for f, t in zip(found, truth):
        hit += len(set(int(x) for x in f[:K]) & set(int(x) for x in t))
    return hit / truth.size


def dir_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


class Hnswlib:
    name = "hnswlib"

    def version(self):
        import importlib.metadata as md
        return md.version("hnswlib")

    def build(self, base, work):
        import hnswlib
        self.index = hnswlib.Index(space="ip", dim=base.shape[1])
        self.index.init_index(max_elements=len(base), ef_construction=EF_CONSTRUCTION, M=M)
        self.index.add_items(base, np.arange(len(base)), num_threads=os.cpu_count())
        path = work / "hnswlib.bin"
        self.index.save_index(str(path))
        return path.stat().st_size

    def set_ef(self, ef):
        self.index.set_ef(ef)

    def search(self, queries, threads):
        ids, _ = self.index.knn_query(queries, k=K, num_threads=threads)
        return ids


class Faiss:
    name = "faiss-hnsw"

    def version(self):
        import faiss
        return faiss.__version__

    def build(self, base, work):
        import faiss
        faiss.omp_set_num_threads(os.cpu_count())
        self.index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(base)
        path = work / "faiss.index"
        faiss.write_index(self.index, str(path))
        return path.stat().st_size

    def set_ef(self, ef):
        self.index.hnsw.efSearch = ef

    def search(self, queries, threads):
        import faiss
        faiss.omp_set_num_threads(threads)
        _, ids = self.index.search(queries, K)
        return ids


class Usearch:
    name = "usearch"

    def version(self):
        import usearch
        return usearch.__version__

    def build(self, base, work):
        from usearch.index import Index
        self.index = Index(ndim=base.shape[1], metric="ip", dtype="f32",
                           connectivity=M, expansion_add=EF_CONSTRUCTION)
        self.index.add(np.arange(len(base)), base, threads=os.cpu_count())
        path = work / "usearch.index"
        self.index.save(str(path))
        return path.stat().st_size

    def set_ef(self, ef):
        self.index.expansion_search = ef

    def search(self, queries, threads):
        return self.index.search(queries, K, threads=threads).keys


class QdrantEdge:
    """qdrant-edge (in-process Qdrant): one segment, HNSW with the same M and
    ef_construct, a float payload index on `u` for filtered search."""
    name = "qdrant-edge"
    filters = True

    def version(self):
        import importlib.metadata as md
        return md.version("qdrant-edge-py")

    def build(self, base, work, u):
        import qdrant_edge as q
        path = work / "qdrant"
        cfg = q.EdgeConfig(
            vectors=q.EdgeVectorParams(size=base.shape[1], distance=q.Distance.Dot),
            hnsw_config=q.HnswIndexConfig(m=M, ef_construct=EF_CONSTRUCTION,
                                          full_scan_threshold=10000,
                                          max_indexing_threads=os.cpu_count()),
            optimizers=q.EdgeOptimizersConfig(default_segment_number=1,
                                              max_segment_size=1 << 30,
                                              indexing_threshold=1000),
            wal_enabled=False,
        )
        self.q = q
        self.shard = q.EdgeShard.create(str(path), cfg)
        t = time.perf_counter()
        self.shard.update(q.UpdateOperation.create_field_index("u", q.PayloadSchemaType.Float))
        for s in range(0, len(base), 2000):
            pts = [q.Point(int(i), base[i].tolist(), {"u": float(u[i])})
                   for i in range(s, min(len(base), s + 2000))]
            self.shard.update(q.UpdateOperation.upsert_points(pts))
        self.upsert_s = time.perf_counter() - t
        self.shard.optimize()
        self.shard.flush()
        return dir_bytes(path)

    def set_ef(self, ef):
        self.ef = ef

    def _one(self, v, flt=None):
        q = self.q
        req = q.SearchRequest(query=q.Query.Nearest(v.tolist()), limit=K, filter=flt,
                              params=q.SearchParams(hnsw_ef=self.ef))
        return [int(p.id) for p in self.shard.search(req)]

    def search(self, queries, threads, flt=None):
        if threads == 1:
            return [self._one(v, flt) for v in queries]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda v: self._one(v, flt), queries))

    def range_filter(self, s):
        q = self.q
        return q.Filter(must=[q.FieldCondition(key="u", range=q.RangeFloat(lt=float(s)))])


ENGINES = {e.name: e for e in [Hnswlib, Faiss, QdrantEdge, Usearch]}


# Passes over the query set per configuration; the fastest counts (as ann-benchmarks
# takes the best of its runs), so a burst of load from elsewhere on a shared machine
# does not decide a ratio. Same setting as the Rust side (ASTROVEC_PEERS_RUNS).
RUNS = int(os.environ.get("ASTROVEC_PEERS_RUNS", "3"))


def timed_search(engine, queries, threads, **kw):
    best = 0.0
    for _ in range(RUNS):
        t = time.perf_counter()
        ids = engine.search(queries, threads, **kw)
        best = max(best, len(queries) / (time.perf_counter() - t))
    return ids, best


def run_engine(name, data, work, out, efs):
    base = np.load(data / "base.npy", mmap_mode="r")
    base = np.ascontiguousarray(base)
    queries = np.load(data / "queries.npy")
    gt = np.load(data / "gt.npy")
    u = np.load(data / "attr_u.npy")
    engine = ENGINES[name]()
    work.mkdir(parents=True, exist_ok=True)
    rss0 = rss_bytes()
    t = time.perf_counter()
    if isinstance(engine, QdrantEdge):
        size = engine.build(base, work, u)
    else:
        size = engine.build(base, work)
    build_s = time.perf_counter() - t
    rss = rss_bytes() - rss0
    threads = os.cpu_count()
    res = {
        "engine": name, "version": engine.version(), "n": len(base), "dim": base.shape[1],
        "build_s": build_s, "build_threads": threads, "index_file_bytes": size,
        "rss_delta_bytes": rss, "runs": [], "filtered": [],
    }
    if isinstance(engine, QdrantEdge):
        res["upsert_s"] = engine.upsert_s
    print(f"{name}: build {build_s:.1f} s, index {size / 1e6:.1f} MB, RSS +{rss / 1e6:.1f} MB", flush=True)
    for ef in efs:
        engine.set_ef(ef)
        engine.search(queries[:50], 1)  # warm-up
        ids, qps1 = timed_search(engine, queries, 1)
        r = recall(ids, gt)
        _, qpsb = timed_search(engine, queries, threads)
        res["runs"].append({"ef": ef, "recall": r, "qps_1t": qps1, "qps_batch": qpsb})
        print(f"{name}: ef {ef}: recall@10 {r:.4f}, {qps1:.0f} QPS 1 thread, {qpsb:.0f} QPS {threads} threads", flush=True)
    if getattr(engine, "filters", False):
        for s in SELECTIVITIES:
            gtf = np.load(data / f"gt_u{s}.npy")
            flt = engine.range_filter(s)
            for ef in [64, 128, 256]:
                engine.set_ef(ef)
                ids, qps1 = timed_search(engine, queries, 1, flt=flt)
                r = recall(ids, gtf)
                res["filtered"].append({"selectivity": s, "mode": f"ef {ef}", "ef": ef, "recall": r, "qps_1t": qps1})
                print(f"{name}: filter {s:.0%} ef {ef}: recall@10 {r:.4f}, {qps1:.0f} QPS", flush=True)
    Path(out).write_text(json.dumps(res, indent=1))


def peers(args):
    data = Path(args.data)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    for name in args.engines.split(","):
        shutil.rmtree(Path(args.work) / name, ignore_errors=True)
        # One process per engine: memory and thread pools do not leak between them.
        subprocess.run([sys.executable, __file__, "one", "--engine", name, "--data", str(data),
                        "--work", str(Path(args.work) / name),
                        "--out", str(Path(args.results) / f"{name}.json"),
                        "--efs", args.efs], check=True)


def one(args):
    run_engine(args.engine, Path(args.data), Path(args.work), args.out,
               [int(e) for e in args.efs.split(",")])


# ---------------------------------------------------------------------- report


def best_qps(res, threshold, key="qps_1t"):
    """Highest QPS among configurations reaching the recall threshold (ann-benchmarks)."""
    ok = [r for r in res["runs"] if r["recall"] >= threshold]
    return max(ok, key=lambda r: r[key]) if ok else None


def lscpu_summary():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    keep = ["Architecture", "Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache"]
    lines = [ln.strip() for ln in out.splitlines() if ln.split(":")[0].strip() in keep]
    flags = [ln for ln in out.splitlines() if ln.startswith("Flags")]
    simd = []
    if flags:
        have = flags[0].split()
        simd = [f for f in ["sse4_2", "avx", "fma", "f16c", "avx2", "avx512f"] if f in have]
    lines.append("SIMD flags: " + " ".join(simd) + ("" if "avx2" in simd else " (no AVX2)"))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines.append(f"Memory: {mem:.0f} GiB")
    return "\n".join(lines)


def report(args):
    results = [json.loads(Path(p).read_text()) for p in sorted(args.results)]
    ours = next(r for r in results if r["engine"] == "astrovec")
    others = [r for r in results if r["engine"] != "astrovec"]
    meta = json.loads((Path(args.data) / "meta.json").read_text())
    L = []
    L.append(f"### {args.title}\n")
    L.append(f"Data: {meta['kind']}, {meta['n']:,} × {meta['dim']} base vectors (unit norm), "
             f"{meta['queries']:,} held-out queries, k = {K}; ground truth by exact search. "
             f"Every engine: M = {M}, ef_construction = {EF_CONSTRUCTION}, inner product.\n")
    L.append("#### Single-thread QPS at a recall target (best configuration reaching it)\n")
    L.append("| recall@10 ≥ | " + " | ".join(r["engine"] for r in results) + " | " +
             " | ".join(f"astrovec ÷ {o['engine']}" for o in others) + " |")
    L.append("|---" * (1 + len(results) + len(others)) + "|")
    for thr in [0.9, 0.95, 0.99]:
        row = [f"{thr}"]
        best = {r["engine"]: best_qps(r, thr) for r in results}
        for r in results:
            b = best[r["engine"]]
            row.append(f"{b['qps_1t']:.0f} (ef {b['ef']})" if b else "not reached")
        for o in others:
            a, b = best["astrovec"], best[o["engine"]]
            row.append(f"**{a['qps_1t'] / b['qps_1t']:.2f}**" if a and b else "–")
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append(f"#### Batched QPS (all {ours['build_threads']} threads) at a recall target\n")
    L.append("| recall@10 ≥ | " + " | ".join(r["engine"] for r in results) + " |")
    L.append("|---" * (1 + len(results)) + "|")
    for thr in [0.95, 0.99]:
        row = [f"{thr}"]
        for r in results:
            b = best_qps(r, thr, "qps_batch")
            row.append(f"{b['qps_batch']:.0f} (ef {b['ef']})" if b else "not reached")
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append(f"#### Build ({ours['build_threads']} threads) and size\n")
    L.append("| engine | version | build, s | astrovec ÷ engine (build time) | index file, MB | "
             "RSS growth, MB | bytes / vector in RAM |")
    L.append("|---|---|---|---|---|---|---|")
    for r in results:
        ratio = ours["build_s"] / r["build_s"]
        note = f" (upsert {r['upsert_s']:.1f} s of it)" if "upsert_s" in r else ""
        L.append(f"| {r['engine']} | {r['version']} | {r['build_s']:.1f}{note} | "
                 f"{ratio:.2f} | {r['index_file_bytes'] / 1e6:.1f} | {r['rss_delta_bytes'] / 1e6:.1f} | "
                 f"{r['rss_delta_bytes'] / r['n']:.0f} |")
    L.append("")
    L.append("#### Recall / QPS curves\n")
    L.append("| engine | ef | recall@10 | QPS, 1 thread | QPS, batched |")
    L.append("|---|---|---|---|---|")
    for r in results:
        for x in r["runs"]:
            L.append(f"| {r['engine']} | {x['ef']} | {x['recall']:.4f} | {x['qps_1t']:.0f} | {x['qps_batch']:.0f} |")
    L.append("")
    filt = [r for r in results if r["filtered"]]
    if filt:
        L.append("#### Filtered search (`u < s`, u uniform: selectivity s), single thread\n")
        L.append("| selectivity | engine | mode | recall@10 | QPS |")
        L.append("|---|---|---|---|---|")
        for s in SELECTIVITIES:
            for r in filt:
                for x in r["filtered"]:
                    if x["selectivity"] == s:
                        L.append(f"| {s:.0%} | {r['engine']} | {x['mode']} | {x['recall']:.4f} | {x['qps_1t']:.0f} |")
        L.append("")
    if "memory" in ours:
        L.append("#### astrovec memory per vector, by storage precision\n")
        L.append("| component | bytes / vector |")
        L.append("|---|---|")
        for m in ours["memory"]:
            L.append(f"| {m['what']} | {m['bytes_per_vector']:.0f} |")
        total = sum(m["bytes_per_vector"] for m in ours["memory"])
        L.append(f"| total | {total:.0f} |")
        L.append("")
    text = "\n".join(L)
    Path(args.out).write_text(text)
    print(text)
    print("\nMachine:\n" + lscpu_summary(), file=sys.stderr)


def machine(_args):
    print(lscpu_summary())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(required=True)
    g = sub.add_parser("gen", help="write a seeded clustered data set and its ground truth")
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=100_000)
    g.add_argument("--dim", type=int, default=1024)
    g.add_argument("--queries", type=int, default=1000)
    g.add_argument("--clusters", type=int, default=100)
    g.add_argument("--sigma", type=float, default=0.7)
    g.add_argument("--seed", type=int, default=2024)
    g.set_defaults(func=gen)
    e = sub.add_parser("embeddings", help="data set from model embeddings (.npy)")
    e.add_argument("--embeddings", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--queries", type=int, default=1000)
    e.add_argument("--seed", type=int, default=2024)
    e.set_defaults(func=from_embeddings)
    r = sub.add_parser("peers", help="run the peer engines")
    r.add_argument("--data", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--results", required=True)
    r.add_argument("--engines", default=",".join(ENGINES))
    r.add_argument("--efs", default=",".join(map(str, EFS)))
    r.set_defaults(func=peers)
    o = sub.add_parser("one", help="run one peer engine (used by `peers`)")
    o.add_argument("--engine", required=True, choices=list(ENGINES))
    o.add_argument("--data", required=True)
    o.add_argument("--work", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--efs", default=",".join(map(str, EFS)))
    o.set_defaults(func=one)
    t = sub.add_parser("report", help="write the comparison tables")
    t.add_argument("--data", required=True)
    t.add_argument("--title", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("results", nargs="+")
    t.set_defaults(func=report)
    m = sub.add_parser("machine", help="print the lscpu summary")
    m.set_defaults(func=machine)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
