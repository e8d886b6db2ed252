#!/usr/bin/env python3
"""Builds the parity fixtures for `encoders/tests/parity.rs`.

A PyTorch reference of the AstroCLIP model written from `shared/docs/ASTROCLIP_REFERENCE.md`
(DINOv2 ViT with chunked blocks and LayerScale, SpecFormer with its in-model preprocessing,
`nn.MultiheadAttention` cross-attention heads), at a reduced size that keeps every code path:

- image head with kdim == embed_dim  -> fused `in_proj_weight`;
- spectrum head with kdim != embed_dim -> separate `q/k/v_proj_weight`, fused `in_proj_bias`;
- 8 ViT blocks in 4 chunks -> keys `blocks.{i // 2}.{i}`;
- unused checkpoint tensors present (`cls_token`, `pos_embed`, `mask_token`, SpecFormer `head`);
- spectra of 201 pixels -> 20/10 slicing, last window dropped -> 19 windows + 1 stats token;
  one nearly flat spectrum (std < 0.2) to exercise the std clamp;
- a g, r, z nanomaggie cutout batch (28 x 28) through the Legacy-viewer RGB mapping + crop 24.

Outputs (all in this directory, ~1 MB in total):
- `config.json`       the model sizes, in `astrovec_encoders::AstroClipConfig` JSON;
- `weights.safetensors` the state_dict (f32);
- `model.ckpt`        a Lightning-style checkpoint: {"state_dict", "hyper_parameters" (holding an
                      instance of a custom class from a module the Rust side cannot import),
                      "epoch", "global_step", "pytorch-lightning_version"};
- `io.safetensors`    inputs and expected outputs (computed in float64, stored as f32) for
                      batch sizes 2 and 5.

Made with torch 2.15.0 (the PyPI wheel, 2.15.0+cu132, run on CPU), numpy 2.4.6, safetensors 0.8.0, Python 3.11.7.
Regenerate from the repository root with:

    pip install torch==2.15.0 numpy safetensors
    python3 encoders/tests/parity/make_fixtures.py

The script is deterministic (seed 3); regenerating with another torch version may change the
random weights but not the checks.
"""

import json
import math
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = {
    "image_backbone": {
        "in_channels": 3, "image_size": 24, "patch_size": 6, "embed_dim": 32, "depth": 8,
        "num_heads": 4, "mlp_hidden_dim": 64, "layer_norm_eps": 1e-6, "block_chunks": 4,
        "layer_scale_init": 1e-5,
    },
    "image_head": {
        "embed_dim": 32, "kv_dim": 32, "num_heads": 4, "mlp_hidden_dim": 128,
        "layer_norm_eps": 1e-5, "residual": False,
    },
    "spectrum_backbone": {
        "spectrum_length": 201, "slice_length": 20, "slice_overlap": 10, "embed_dim": 24,
        "depth": 2, "num_heads": 2, "mlp_hidden_dim": 96, "max_len": 24,
        "layer_norm_eps": 1e-5, "std_min": 0.2,
    },
    "spectrum_head": {
        "embed_dim": 32, "kv_dim": 24, "num_heads": 4, "mlp_hidden_dim": 128,
        "layer_norm_eps": 1e-5, "residual": True,
    },
}
CUTOUT = 28  # raw g, r, z cutout side for the preprocessing path (cropped to 24)


# ---------------------------------------------------------------- image backbone (DINOv2)
class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class VitMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = VitMlp(dim, hidden)
        self.ls2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class BlockChunk(nn.ModuleList):
    """DINOv2 chunking: chunk c holds Identity placeholders then its own blocks, so the
    state_dict keys read `blocks.{c}.{i}` with the global block index i."""

    def forward(self, x):
        for b in self:
            x = b(x)
        return x


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["embed_dim"], c["patch_size"]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(c["in_channels"], d, kernel_size=p, stride=p)
        n = (c["image_size"] // p) ** 2
        # Present in the checkpoint, unused on the AstroCLIP path.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))
        blocks = [Block(d, c["num_heads"], c["mlp_hidden_dim"], c["layer_norm_eps"])
                  for _ in range(c["depth"])]
        size = c["depth"] // c["block_chunks"]
        self.blocks = nn.ModuleList(
            [BlockChunk([nn.Identity()] * i + blocks[i:i + size])
             for i in range(0, c["depth"], size)])
        self.norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])

    def forward(self, x):
        # AstroCLIP's ImageHead: patch_embed -> blocks -> norm (no CLS, no pos_embed).
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        for chunk in self.blocks:
            x = chunk(x)
        return self.norm(x)


# ---------------------------------------------------------------- SpecFormer
def slice_windows(x, section_length, overlap):
    """The reference's `slice` on (B, L, 1), including its quirk: it checks shape[1] of a
    (B, 1, section) tensor, which is always 1 < section, so the last window is always dropped."""
    starts = np.arange(0, x.shape[1] - overlap, section_length - overlap)
    sections = [x[:, s:s + section_length].transpose(1, 2) for s in starts]
    if sections[-1].shape[1] < section_length:
        sections.pop(-1)
    return torch.cat(sections, 1)


class LayerNormBias(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class SelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.d, self.heads = d, heads
        self.attention = nn.Linear(d, 3 * d)
        self.projection = nn.Linear(d, d)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.attention(x).split(self.d, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False)
        return self.projection(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.encoder = nn.Linear(d, hidden)
        self.activation = nn.GELU()
        self.decoder = nn.Linear(hidden, d)

    def forward(self, x):
        return self.decoder(self.activation(self.encoder(x)))


class TransformerBlock(nn.Module):
    def __init__(self, d, heads, hidden, eps):
        super().__init__()
        self.layernorm1 = LayerNormBias(d, eps)
        self.attention = SelfAttention(d, heads)
        self.layernorm2 = LayerNormBias(d, eps)
        self.mlp = MLP(d, hidden)

    def forward(self, x):
        x = x + self.attention(self.layernorm1(x))
        return x + self.mlp(self.layernorm2(x))


class SpecFormer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, tok = c["embed_dim"], c["slice_length"] + 2
        self.data_embed = nn.Linear(tok, d)
        self.position_embed = nn.Embedding(c["max_len"], d)
        self.blocks = nn.ModuleList(
            [TransformerBlock(d, c["num_heads"], c["mlp_hidden_dim"], c["layer_norm_eps"])
             for _ in range(c["depth"])])
        self.final_layernorm = LayerNormBias(d, c["layer_norm_eps"])
        self.head = nn.Linear(d, tok)  # pretraining only; unused here

    def preprocess(self, x):
        std, mean = x.std(1, keepdim=True).clip_(self.c["std_min"]), x.mean(1, keepdim=True)
        x = (x - mean) / std
        x = slice_windows(x, self.c["slice_length"], self.c["slice_overlap"])
        x = F.pad(x, pad=(2, 0, 1, 0), mode="constant", value=0)
        x[:, 0, 0] = (mean.squeeze() - 2) / 2
        x[:, 0, 1] = (std.squeeze() - 2) / 8
        return x

    def forward(self, x):
        x = self.preprocess(x)
        t = x.shape[1]
        pos = torch.arange(0, t, dtype=torch.long, device=x.device)
        x = self.data_embed(x) + self.position_embed(pos)
        for block in self.blocks:
            x = block(x)
        return self.final_layernorm(x)


# ---------------------------------------------------------------- heads and model
class CrossAttentionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, c["embed_dim"]))
        self.multihead_attn = nn.MultiheadAttention(
            embed_dim=c["embed_dim"], num_heads=c["num_heads"], batch_first=True,
            kdim=c["kv_dim"], vdim=c["kv_dim"])
        self.layernorm = nn.LayerNorm(c["embed_dim"], eps=c["layer_norm_eps"])

    def forward(self, x):
        b = x.shape[0]
        att = self.multihead_attn(query=self.query.repeat(b, 1, 1), key=x, value=x,
                                  need_weights=False)[0]
        return self.layernorm(att), att[1]  # (quirk) indexes batch element 1


class Encoder(nn.Module):
    def __init__(self, backbone, head_cfg):
        super().__init__()
        self.backbone = backbone
        self.cross_attention = CrossAttentionHead(head_cfg)
        self.mlp = MLP(head_cfg["embed_dim"], head_cfg["mlp_hidden_dim"])
        self.residual = head_cfg["residual"]

    def forward(self, x):
        x, _ = self.cross_attention(self.backbone(x))
        x = x + self.mlp(x) if self.residual else self.mlp(x)
        return x.squeeze()


class AstroClipRef(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.image_encoder = Encoder(Backbone(c["image_backbone"]), c["image_head"])
        self.spectrum_encoder = Encoder(SpecFormer(c["spectrum_backbone"]), c["spectrum_head"])

    def embed_images(self, x):
        return self.image_encoder(x)

    def embed_spectra(self, flux):
        return self.spectrum_encoder(flux[..., None])  # the reference takes (B, L, 1)


# ---------------------------------------------------------------- preprocessing
def legacy_rgb(grz):
    """Legacy Survey viewer mapping; (B, 3, H, W) g, r, z nanomaggies -> z, r, g in [0, 1]."""
    scales = {0: (2, 6.0), 1: (1, 3.4), 2: (0, 2.2)}
    m, q = 0.03, 20.0
    out = np.zeros_like(grz)
    for n in range(grz.shape[0]):
        img = grz[n]
        i = np.zeros(img.shape[1:], dtype=np.float64)
        for b in range(3):
            i += np.maximum(0.0, img[b] * scales[b][1] + m)
        i /= 3.0
        fi = np.arcsinh(q * i) / math.sqrt(q)
        i = i + (i == 0.0) * 1e-6
        for b in range(3):
            plane, s = scales[b]
            out[n, plane] = np.clip((img[b] * s + m) * fi / i, 0.0, 1.0)
    return out


def center_crop(x, size):
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


class FixtureHParams:
    """Stands in for the objects the real checkpoint pickles in `hyper_parameters`."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


# A module path the Rust side (and a plain unpickler) cannot import, like the real file's:
# registered in sys.modules only while this script pickles it.
FixtureHParams.__module__ = "astroclip.models.astroclip"
for _name in ("astroclip", "astroclip.models", "astroclip.models.astroclip"):
    sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules["astroclip.models.astroclip"].FixtureHParams = FixtureHParams


def main():
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    model = AstroClipRef(CONFIG).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.5 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1 or name.endswith("query"):
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.add_(0.02 * torch.randn_like(p))
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    ib, sb = CONFIG["image_backbone"], CONFIG["spectrum_backbone"]
    io = {}
    for b in (2, 5):
        io[f"images_b{b}"] = rng.uniform(0, 1, (b, 3, ib["image_size"], ib["image_size"]))
        wave = np.linspace(0, 1, sb["spectrum_length"])
        spectra = []
        for i in range(b):
            if i == 1:  # nearly flat: std < 0.2 -> clamp
                s = 0.7 + 0.02 * rng.standard_normal(wave.shape)
            else:
                s = (rng.uniform(0.5, 6) + rng.uniform(-2, 2) * wave
                     + rng.uniform(0.2, 2) * np.sin(rng.uniform(5, 40) * wave)
                     + 0.3 * rng.standard_normal(wave.shape))
            spectra.append(s)
        io[f"spectra_b{b}"] = np.stack(spectra)
    yy, xx = np.mgrid[0:CUTOUT, 0:CUTOUT] - (CUTOUT - 1) / 2
    prof = np.exp(-np.hypot(yy, xx) / 3.0)
    grz = np.stack([np.stack([f * prof for f in rng.uniform(0.05, 2.0, 3)]) for _ in range(2)])
    grz = grz + 0.01 * rng.standard_normal(grz.shape)
    io["grz_b2"] = grz
    io["grz_rgb_b2"] = center_crop(legacy_rgb(grz.astype(np.float64)), ib["image_size"])

    # Expected outputs from the float64 model on the f32-rounded inputs.
    ref64 = AstroClipRef(CONFIG).double().eval()
    ref64.load_state_dict({k: v.double() for k, v in sd.items()})
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in io.items()}
    with torch.no_grad():
        for b in (2, 5):
            im = torch.from_numpy(f32[f"images_b{b}"]).double()
            sp = torch.from_numpy(f32[f"spectra_b{b}"]).double()
            io[f"image_emb_b{b}"] = ref64.embed_images(im).numpy()
            io[f"spectrum_emb_b{b}"] = ref64.embed_spectra(sp).numpy()
            # How far the float32 reference itself is from float64 (for the record).
            e32 = model.embed_images(torch.from_numpy(f32[f"images_b{b}"])).numpy()
            s32 = model.embed_spectra(torch.from_numpy(f32[f"spectra_b{b}"])).numpy()
            print(f"b{b}: torch f32 vs f64 max abs err image "
                  f"{np.abs(e32 - io[f'image_emb_b{b}']).max():.2e}, spectrum "
                  f"{np.abs(s32 - io[f'spectrum_emb_b{b}']).max():.2e}")
        rgb = torch.from_numpy(np.asarray(io["grz_rgb_b2"], dtype=np.float32)).double()
        io["grz_emb_b2"] = ref64.embed_images(rgb).numpy()

    with open(os.path.join(HERE, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    save_file(sd, os.path.join(HERE, "weights.safetensors"))
    hparams = FixtureHParams(image_encoder=nn.Linear(2, 2), note="custom object; not needed")
    torch.save({
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": "2.2.0",
        "state_dict": model.state_dict(),  # an OrderedDict with `_metadata`, as Lightning saves
        "hyper_parameters": {"config": hparams, "lr": 1e-4},
    }, os.path.join(HERE, "model.ckpt"))
    save_file({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in io.items()},
              os.path.join(HERE, "io.safetensors"))
    n = sum(v.numel() for v in sd.values())
    print(f"torch {torch.__version__}: {len(sd)} tensors, {n} values")


if __name__ == "__main__":
    main()
