"""StyleGAN2-style generator and residual discriminator for N-stain images.

Pure PyTorch (no custom CUDA kernels), so the same code runs on CPU and CUDA.

Design follows StyleGAN2 (Karras et al. 2020): a mapping network turns z into
an intermediate latent w; the synthesis network starts from a learned 4x4
constant and doubles the resolution per block with modulated / demodulated
3x3 convolutions, per-pixel noise and skip ("toRGB") outputs that are summed
across resolutions.  The discriminator is residual, ends with a minibatch
standard deviation layer, a 3x3 conv, a fully connected feature layer of
``feature_dim`` (512) units -- the GAN-DL embedding -- and a linear output.

Differences from the reference implementation, all deliberate:

* Up/down-sampling uses bilinear interpolation / 2x2 average pooling instead
  of FIR-filtered transposed convolutions (simpler, portable, same role).
* The minibatch-stddev layer always uses a fixed group size while training and,
  in ``eval()`` mode, replaces the group statistic with a running average
  tracked during training.  An image's features therefore never depend on
  which other images share its batch.
* The image channel count is a parameter (``img_channels``): the first layer
  of D and the last of G are sized for the number of stains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from napari_gandl.config import Config

__all__ = [
    "NetworkConfig",
    "Generator",
    "Discriminator",
    "MappingNetwork",
    "SynthesisNetwork",
    "build_networks",
    "noise_generators",
    "noise_maps",
]

_SQRT2 = math.sqrt(2.0)


def _lrelu(x: torch.Tensor, gain: float = _SQRT2) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * gain


def check_resolution(resolution: int) -> int:
    resolution = int(resolution)
    if resolution < 32 or resolution > 1024 or resolution & (resolution - 1):
        raise ValueError(
            f"resolution must be a power of two between 32 and 1024, got {resolution}"
        )
    return resolution


@dataclass
class NetworkConfig(Config):
    """Everything needed to rebuild G and D (stored as JSON in checkpoints)."""

    img_channels: int = 5
    resolution: int = 64
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 3
    channel_base: int = 8192  # channels at resolution r = min(base // r, max)
    channel_max: int = 512
    feature_dim: int = 512  # width of D's penultimate layer = embedding size
    d_channel_base: int | None = None  # D widths (None: same as G's)
    d_channel_max: int | None = None
    # D downsampling: False = 3x3 conv at the input resolution, then 2x2 average pooling;
    # True = 2x2 average pooling, then the conv at the lower resolution (4x cheaper; the
    # role of StyleGAN2's blur + stride-2 conv)
    d_pool_first: bool = False
    mbstd_group: int = 4
    mbstd_channels: int = 1
    codes: int = 0  # the first inputs of w are z's own, past the mapping (code recovery's codes, gan/info.py)

    def __post_init__(self):
        self.resolution = check_resolution(self.resolution)
        if self.img_channels < 1:
            raise ValueError(f"img_channels must be >= 1, got {self.img_channels}")
        if self.mapping_layers < 1:
            raise ValueError("mapping_layers must be >= 1")

    def channels(self, res: int) -> int:
        """Generator width at resolution ``res``."""
        return max(1, min(self.channel_base // res, self.channel_max))

    def d_channels(self, res: int) -> int:
        """Discriminator width at resolution ``res``."""
        base = self.d_channel_base or self.channel_base
        cmax = self.d_channel_max or self.channel_max
        return max(1, min(base // res, cmax))



# ---------------------------------------------------------------------------
# Equalised-learning-rate building blocks
# ---------------------------------------------------------------------------


class EqualLinear(nn.Module):
    """Fully connected layer with runtime weight scaling (equalised lr)."""

    def __init__(self, in_f, out_f, bias=True, bias_init=0.0, lr_mult=1.0, act=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init))) if bias else None
        self.w_gain = lr_mult / math.sqrt(in_f)
        self.b_gain = lr_mult
        self.act = act

    def forward(self, x):
        w = self.weight * self.w_gain
        b = self.bias * self.b_gain if self.bias is not None else None
        x = F.linear(x, w, b)
        return _lrelu(x) if self.act else x


class EqualConv2d(nn.Module):
    """Plain conv with equalised lr; optional 2x average-pool downsampling."""

    def __init__(self, in_ch, out_ch, k, bias=True, act=True, down=False, act_gain=_SQRT2,
                 pool_first=False, out_gain=1.0):
        super().__init__()
        self.pool_first = pool_first
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.w_gain = 1.0 / math.sqrt(in_ch * k * k)
        self.pad = k // 2
        self.act = act
        self.down = down
        # output scale (activation gain x any residual scale), folded into the weights and
        # bias: lrelu(g * y) == g * lrelu(y) for g > 0, so no extra pass over the activations
        self.out_gain = (act_gain if act else 1.0) * out_gain

    def forward(self, x):
        g = self.out_gain
        w = (self.weight * (self.w_gain * g)).to(x.dtype)
        b = (self.bias * g).to(x.dtype) if self.bias is not None else None
        if self.down and self.pool_first:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, w, b, padding=self.pad)
        if self.down and not self.pool_first:
            x = F.avg_pool2d(x, 2)
        if self.act:
            x = F.leaky_relu(x, 0.2)
        return x


# ---------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    def __init__(self, z_dim=512, w_dim=512, num_layers=3, lr_mult=0.01, w_avg_beta=0.995, codes=0):
        super().__init__()
        self.z_dim, self.w_dim, self.codes = z_dim, w_dim, codes
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_mult=lr_mult, act=True)
            for i in range(num_layers)
        )
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, truncation_psi=1.0, update_w_avg=False):
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # pixel norm
        for layer in self.layers:
            x = layer(x)
        if self.codes:
            # past the 100x slower mapping, and as loud as the rest of w together: through a style's
            # equalised weights (1/sqrt(w_dim)) an input of unit scale barely moves an image, and G's
            # steps would take thousands of images to make it louder (measured: no code was read in 3 kimg)
            loud = (self.w_dim - self.codes) ** 0.5 / self.codes ** 0.5
            x = torch.cat([loud * z[:, : self.codes].to(x.dtype), x[:, self.codes:]], dim=1)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            x = self.w_avg.to(x.dtype).lerp(x, truncation_psi)
        return x


class ModulatedConv2d(nn.Module):
    """Style-modulated conv; demodulation normalises each output feature map.

    Implemented without grouped convolutions (scale activations instead of the
    weights), which is mathematically identical and faster on CPU.
    """

    def __init__(self, in_ch, out_ch, k, w_dim, demodulate=True, up=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.w_gain = 1.0 / math.sqrt(in_ch * k * k)
        self.demodulate = demodulate
        self.up = up
        self.pad = k // 2

    def forward(self, x, w):
        styles = self.affine(w)  # [N, in]
        weight = self.weight * self.w_gain
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = x * styles.to(x.dtype)[:, :, None, None]
        x = F.conv2d(x, weight.to(x.dtype), padding=self.pad)
        if self.demodulate:
            # sigma_j = sqrt(sum_{i,k} (w_ijk * s_i)^2)
            wsq = weight.square().sum(dim=(2, 3))  # [out, in]
            dcoef = torch.rsqrt(styles.square() @ wsq.t() + 1e-8)  # [N, out]
            x = x * dcoef.to(x.dtype)[:, :, None, None]
        return x


def noise_generators(seeds):
    """A ``noise_mode`` that draws every image's per-pixel noise from its own seed.

    The noise inputs are where a StyleGAN2 puts what varies without style; on
    cell images that includes where the cells are, so one shared noise
    ("const") gives every sample the same layout.  Seeded per image, a sample
    is reproducible and independent of its batch mates.  The generators are
    stateful: make a fresh one for every forward pass.
    """
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    return lambda layer: torch.stack([torch.randn(1, layer.resolution, layer.resolution, generator=g)
                                      for g in gens])


def noise_maps(maps):
    """A ``noise_mode`` of explicit maps: ``maps[i]``, ``(N, 1, r, r)``, feeds the i-th noise
    layer (:meth:`SynthesisNetwork.noise_layers`); used to project images and walk paths."""
    return lambda layer: maps[layer.index]


class SynthesisLayer(nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, resolution, up=False, conv_clamp=None):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, up=up)
        self.resolution = resolution
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.conv_clamp = conv_clamp

    def forward(self, x, w, noise_mode="random"):
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = torch.randn(
                x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype
            )
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        elif callable(noise_mode):  # layer -> (N, 1, r, r): noise_generators or noise_maps
            x = x + noise_mode(self).to(x.device, x.dtype) * self.noise_strength.to(x.dtype)
        x = _lrelu(x + self.bias.to(x.dtype)[None, :, None, None])
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class ToImage(nn.Module):
    """1x1 modulated conv (no demodulation) to the N stain channels."""

    def __init__(self, in_ch, img_channels, w_dim):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x, w):
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


class SynthesisBlock(nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, resolution, img_channels, conv_clamp=None):
        super().__init__()
        self.resolution = resolution
        self.first = in_ch == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
            self.conv1 = SynthesisLayer(out_ch, out_ch, w_dim, resolution, conv_clamp=conv_clamp)
            self.num_conv = 1
        else:
            self.conv0 = SynthesisLayer(in_ch, out_ch, w_dim, resolution, up=True, conv_clamp=conv_clamp)
            self.conv1 = SynthesisLayer(out_ch, out_ch, w_dim, resolution, conv_clamp=conv_clamp)
            self.num_conv = 2
        self.torgb = ToImage(out_ch, img_channels, w_dim)

    def forward(self, x, img, ws, noise_mode="random"):
        # ws: [N, num_conv + 1, w_dim]
        if self.first:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        if img is not None:
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            y = y + img
        return x, y


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: NetworkConfig, conv_clamp=None):
        super().__init__()
        self.resolutions = [2**i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
        self.blocks = nn.ModuleList()
        self.num_ws = 0
        prev = 0
        for res in self.resolutions:
            ch = cfg.channels(res)
            blk = SynthesisBlock(prev, ch, cfg.w_dim, res, cfg.img_channels, conv_clamp)
            self.blocks.append(blk)
            self.num_ws += blk.num_conv
            prev = ch
        self.num_ws += 1  # last toRGB
        for i, layer in enumerate(self.noise_layers()):
            layer.index = i

    def noise_layers(self) -> list[SynthesisLayer]:
        """The layers that add per-pixel noise, in the order of the forward pass."""
        return [conv for blk in self.blocks for conv in ((blk.conv1,) if blk.first else (blk.conv0, blk.conv1))]

    def forward(self, ws, noise_mode="random"):
        x = img = None
        idx = 0
        for blk in self.blocks:
            # each block consumes num_conv ws and shares the next with its toRGB
            x, img = blk(x, img, ws[:, idx : idx + blk.num_conv + 1], noise_mode)
            idx += blk.num_conv
        return img


class Generator(nn.Module):
    def __init__(self, cfg: NetworkConfig, conv_clamp=None):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim = cfg.z_dim, cfg.w_dim
        self.img_channels, self.resolution = cfg.img_channels, cfg.resolution
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, codes=cfg.codes)
        self.synthesis = SynthesisNetwork(cfg, conv_clamp)
        self.num_ws = self.synthesis.num_ws

    def map(self, z, truncation_psi=1.0, update_w_avg=False, style_mixing_prob=0.0):
        """Per-layer styles of ``z``; in training, style mixing swaps in a second latent from a random
        layer on, which keeps ``z``'s codes (:attr:`NetworkConfig.codes`)."""
        w = self.mapping(z, truncation_psi, update_w_avg)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if style_mixing_prob > 0 and self.training:
            # style mixing regularisation: second latent from a random cutoff
            z2 = torch.randn_like(z)
            z2[:, : self.cfg.codes] = z[:, : self.cfg.codes]
            w2 = self.mapping(z2, truncation_psi)
            cutoff = torch.randint(1, self.num_ws, (), device=z.device)
            use = torch.rand(z.shape[0], 1, 1, device=z.device) < style_mixing_prob
            idx = torch.arange(self.num_ws, device=z.device)[None, :, None]
            ws = torch.where(use & (idx >= cutoff), w2.unsqueeze(1), ws)
        return ws

    def synthesize(self, w, noise_mode="const"):
        """Images from w ([N, w_dim] broadcast to all layers, or [N, num_ws, w_dim])."""
        if w.dim() == 2:
            w = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        return self.synthesis(w, noise_mode)

    def forward(self, z, truncation_psi=1.0, noise_mode="random", update_w_avg=False,
                style_mixing_prob=0.0):
        ws = self.map(z, truncation_psi, update_w_avg, style_mixing_prob)
        return self.synthesis(ws, noise_mode)


# ---------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (second downsamples) + 1x1 skip, / sqrt(2)."""

    def __init__(self, in_ch, out_ch, pool_first=False):
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        # both branches are scaled by sqrt(1/2) (folded into the convs) before the sum
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, down=True, pool_first=pool_first,
                                 out_gain=math.sqrt(0.5))
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, act=False, down=True,
                                pool_first=pool_first, out_gain=math.sqrt(0.5))

    def forward(self, x):
        return self.conv1(self.conv0(x)) + self.skip(x)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation with a fixed group size.

    Training mode: the batch is split into groups of exactly ``group_size``
    images (the batch size must be a multiple of it) and each image gets the
    stddev statistic of its group; a running mean of the statistic is kept.
    Eval mode: every image gets the running mean, so the output for an image
    is independent of the rest of the batch (what embeddings need).
    """

    def __init__(self, group_size=4, num_channels=1, momentum=0.01):
        super().__init__()
        self.group_size = int(group_size)
        self.num_channels = int(num_channels)
        self.momentum = momentum
        self.register_buffer("running_std", torch.zeros(num_channels))

    def forward(self, x):
        N, C, H, W = x.shape
        F_ = self.num_channels
        if self.training:
            G = self.group_size
            if N % G:
                raise ValueError(
                    f"minibatch-stddev group size {G} does not divide the batch size {N}"
                )
            y = x.reshape(G, N // G, F_, C // F_, H, W).float()
            y = y - y.mean(dim=0)
            y = (y.square().mean(dim=0) + 1e-8).sqrt()
            y = y.mean(dim=[2, 3, 4])  # [N/G, F]
            with torch.no_grad():
                self.running_std.lerp_(y.detach().mean(0), self.momentum)
            y = y.reshape(-1, F_, 1, 1).repeat(G, 1, H, W)
        else:
            y = self.running_std.reshape(1, F_, 1, 1).expand(N, F_, H, W)
        return torch.cat([x, y.to(x.dtype)], dim=1)


class Discriminator(nn.Module):
    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.cfg = cfg
        self.img_channels, self.resolution = cfg.img_channels, cfg.resolution
        top = cfg.resolution
        self.fromrgb = EqualConv2d(cfg.img_channels, cfg.d_channels(top), 1)
        blocks = []
        res = top
        while res > 4:
            blocks.append(DiscriminatorBlock(cfg.d_channels(res), cfg.d_channels(res // 2),
                                             pool_first=cfg.d_pool_first))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        ch4 = cfg.d_channels(4)
        # "stats" embedding: block outputs at <= 1/4 of the resolution, highest first,
        # until feature_dim / 2 channels are collected (their mean and std over positions)
        self.stats_taps = []
        need = cfg.feature_dim // 2
        res = top
        for i in range(len(blocks)):
            res //= 2
            if res <= top // 4 and need > 0:
                take = min(need, cfg.d_channels(res))
                self.stats_taps.append((i, take))
                need -= take
        self.stats_available = need == 0
        self.mbstd = MinibatchStd(cfg.mbstd_group, cfg.mbstd_channels)
        # the epilogue conv is feature_dim wide whatever the trunk widths, so the
        # pooled embedding is feature_dim-d for every preset
        self.conv = EqualConv2d(ch4 + cfg.mbstd_channels, cfg.feature_dim, 3)
        self.fc = EqualLinear(cfg.feature_dim * 16, cfg.feature_dim, act=True)
        self.out = EqualLinear(cfg.feature_dim, 1)

    def trunk(self, img):
        """Activations before the epilogue ([N, C4, 4, 4])."""
        x = self.fromrgb(img)
        for blk in self.blocks:
            x = blk(x)
        return x

    FEATURE_LAYERS = ("stats", "pool", "fc")

    @property
    def embedding_layer(self) -> str:
        """The layer ``gandl embed`` reads by default (and training's --align and --contrastive
        shape): "stats" when D is wide enough for it, else "pool"."""
        return "stats" if self.stats_available else "pool"

    def features(self, img, layer: str = "fc"):
        """``feature_dim``-d features of D for an image batch.

        ``layer="fc"``: the penultimate fully connected layer (the GAN-DL
        paper's choice); ``layer="pool"``: the epilogue conv activations
        averaged over the 4x4 positions; ``layer="stats"``: mean and standard
        deviation over positions of D's mid-level activations (block outputs
        at 1/4 of the resolution and below, ``feature_dim / 2`` channels) --
        translation-invariant texture descriptors.
        """
        if layer == "stats":
            if not self.stats_available:
                raise ValueError(
                    f"the 'stats' embedding needs {self.cfg.feature_dim // 2} discriminator channels "
                    f"at <= 1/4 of the resolution; this D has fewer (widen D or use layer='pool')"
                )
            return self._trunk_and_stats(img, whole=False)[1]
        x = self.conv(self.mbstd(self.trunk(img)))
        if layer == "pool":
            return x.mean(dim=(2, 3))
        if layer == "fc":
            return self.fc(x.flatten(1))
        raise ValueError(f"unknown feature layer {layer!r}; choose from {self.FEATURE_LAYERS}")

    def _trunk_and_stats(self, img, whole: bool):
        """The trunk's activations and the "stats" embedding; ``whole=False`` stops after the last tap."""
        x = self.fromrgb(img)
        means, stds = [], []
        taps = dict(self.stats_taps)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in taps:
                t = x[:, : taps[i]].float()
                means.append(t.mean(dim=(2, 3)))
                stds.append(t.std(dim=(2, 3)))
                if i == max(taps) and not whole:
                    break
        return x, torch.cat(means + stds, dim=1)

    def logits_and_embedding(self, img):
        """D's logits and its embedding (:attr:`embedding_layer`) from one pass."""
        if self.stats_available:
            x, embedding = self._trunk_and_stats(img, whole=True)
            x = self.conv(self.mbstd(x))
        else:
            x = self.conv(self.mbstd(self.trunk(img)))
            embedding = x.mean(dim=(2, 3))
        return self.out(self.fc(x.flatten(1))), embedding

    def forward(self, img):
        return self.out(self.features(img, "fc"))


def build_networks(cfg: NetworkConfig, device="cpu", conv_clamp=None):
    """(G, D, G_ema) on ``device``; G_ema starts as an exact copy of G."""
    G = Generator(cfg, conv_clamp).to(device)
    D = Discriminator(cfg).to(device)
    G_ema = Generator(cfg, conv_clamp).to(device)
    G_ema.load_state_dict(G.state_dict())
    G_ema.requires_grad_(False).eval()
    return G, D, G_ema
