#!/usr/bin/env python3
"""PyTorch CPU baseline for `benches/encode.rs`: the same AstroCLIP architectures (the parity
reference in `encoders/tests/parity/make_fixtures.py`, built from the specification), the same
presets, batch sizes and thread count, random weights, eval mode, `torch.inference_mode()`.

Run from the repository root:

    python3 benches/encode_torch.py [--threads N] [--presets small,astroclip] [--seconds 10]

Threads default to all cores (`os.cpu_count()`), like OpenBLAS in the Burn bench.
"""

import argparse
import importlib.util
import os
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "parity_ref", os.path.join(HERE, "..", "encoders", "tests", "parity", "make_fixtures.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def image_backbone(embed_dim=1024, depth=24, heads=16, hidden=4096):
    return {"in_channels": 3, "image_size": 144, "patch_size": 12, "embed_dim": embed_dim,
            "depth": depth, "num_heads": heads, "mlp_hidden_dim": hidden,
            "layer_norm_eps": 1e-6, "block_chunks": 4, "layer_scale_init": 1e-5}


def specformer(embed_dim=768, depth=6, heads=6, hidden=3072):
    return {"spectrum_length": 7781, "slice_length": 20, "slice_overlap": 10,
            "embed_dim": embed_dim, "depth": depth, "num_heads": heads, "mlp_hidden_dim": hidden,
            "max_len": 800, "layer_norm_eps": 1e-5, "std_min": 0.2}


def head(embed_dim, kv_dim, residual, heads=4, hidden=None):
    return {"embed_dim": embed_dim, "kv_dim": kv_dim, "num_heads": heads,
            "mlp_hidden_dim": hidden or 4 * embed_dim, "layer_norm_eps": 1e-5,
            "residual": residual}


# Mirrors AstroClipConfig::astroclip() / ::small() in encoders/src/model/astroclip.rs.
PRESETS = {
    "astroclip": {
        "image_backbone": image_backbone(),
        "image_head": head(1024, 1024, False),
        "spectrum_backbone": specformer(),
        "spectrum_head": head(1024, 768, True),
    },
    "small": {
        "image_backbone": image_backbone(384, 12, 6, 1536),
        "image_head": head(512, 384, False),
        "spectrum_backbone": specformer(256, 4, 4, 1024),
        "spectrum_head": head(512, 256, True),
    },
}
BATCH = {"astroclip": 4, "small": 16}


def measure(items, min_seconds, f):
    f()
    start, runs = time.perf_counter(), 0
    while runs < 2 or time.perf_counter() - start < min_seconds:
        f()
        runs += 1
    return items * runs / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--presets", default="small,astroclip")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__} CPU, threads {torch.get_num_threads()}")
    for name in [p.strip() for p in args.presets.split(",") if p.strip()]:
        cfg, n = PRESETS[name], BATCH[name]
        model = ref.AstroClipRef(cfg).eval()
        images = torch.rand(n, 3, 144, 144)
        flux = 1.0 + torch.sin(torch.arange(7781, dtype=torch.float32) * 0.01).repeat(n, 1)
        with torch.inference_mode():
            ips = measure(n, args.seconds, lambda: model.embed_images(images))
            sps = measure(n, args.seconds, lambda: model.embed_spectra(flux))
        print(f"torch {name:<10} batch {n:>2}  images/s {ips:8.2f}  spectra/s {sps:8.2f}")


if __name__ == "__main__":
    main()
