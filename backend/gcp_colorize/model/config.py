"""GCP architecture as data: one `GCPConfig` row per model size, one code path for all.

The official model works at 256 px. A row generalises that layout to a native resolution
R: BigGAN G/D/E follow the BigGAN architecture table for R, the correspondence grid and
the coarsest warped GAN feature are at R/4, and the finer features at R/2 and R. Every
channel width not listed in the row is derived from it (e.g. the SPADE widths are the
channel counts of G's features), so checkpoints of a row have exactly one layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# BigGAN channel multipliers per resolution. G: block i maps mult[i] -> mult[i+1] channels
# (times g_ch) and doubles the size, from 4x4 up to R. D and E: block i outputs mult[i]
# (times d_ch / e_ch); every block but the last halves the size.
G_CHANNEL_MULTIPLIERS = {
    64: (16, 16, 8, 4, 2),
    128: (16, 16, 8, 4, 2, 1),
    256: (16, 16, 8, 8, 4, 2, 1),
}
D_CHANNEL_MULTIPLIERS = {
    64: (1, 2, 4, 8, 16),
    128: (1, 2, 4, 8, 16, 16),
    256: (1, 2, 4, 8, 8, 16, 16),
}
G_BOTTOM_WIDTH = 4
# D blocks 0..2 feed the correspondence: block 1 (at R/4) and block 2 (at R/8).
D_FEATURE_BLOCKS = 3


@dataclass(frozen=True)
class GCPConfig:
    name: str
    resolution: int            # native size R of the network path (square)
    n_classes: int             # class-embedding rows (ImageNet: 1000)
    dim_z: int                 # latent size E outputs and G reads
    shared_dim: int            # class-embedding width (G and E each have their own)
    g_ch: int                  # BigGAN G width multiplier
    d_ch: int                  # BigGAN D width multiplier
    e_ch: int                  # GAN encoder width multiplier
    attention_resolution: int  # self-attention in G, D and E at this feature size
    corr_nonlocal_nc: int      # width of the correspondence embeddings theta / phi
    color_ngf: int             # colorization net base width
    corr_temperature: float = 0.01
    color_res_blocks: int = 6
    bn_eps: float = 1e-5
    sn_eps: float = 1e-12
    # False: the paper's "w/o GAN prior" ablation (Table 2): only the colorization net,
    # whose SPADE conditions are zeros; no E, G, D features or correspondence.
    gan_prior: bool = True
    # True (ours, not the paper's): the colorization net also reads the pretrained
    # classifier's feature maps of the gray input (`ImageNetClassifier.read`),
    # added to its encoder's output through a zero-initialised 1x1 conv: what ImageNet
    # taught the classifier about objects, for placing colour (cf. Larsson et al. 2016).
    semantic_features: bool = False

    def __post_init__(self):
        if self.resolution not in G_CHANNEL_MULTIPLIERS:
            raise ValueError(f"{self.name}: resolution {self.resolution} not in "
                             f"{sorted(G_CHANNEL_MULTIPLIERS)}")
        if self.z_chunk <= 0:
            raise ValueError(f"{self.name}: dim_z {self.dim_z} too small for "
                             f"{self.z_slots} latent slots")
        if self.attention_resolution not in self.g_block_resolutions:
            raise ValueError(f"{self.name}: attention_resolution {self.attention_resolution} "
                             f"is not a G block size {self.g_block_resolutions}")
        for field in ("n_classes", "shared_dim", "g_ch", "d_ch", "e_ch",
                      "corr_nonlocal_nc", "color_ngf"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{self.name}: {field} must be positive")

    # --- BigGAN G -----------------------------------------------------------------------
    @property
    def g_block_channels(self) -> list[tuple[int, int]]:
        mult = G_CHANNEL_MULTIPLIERS[self.resolution]
        return [(self.g_ch * a, self.g_ch * b) for a, b in zip(mult[:-1], mult[1:])]

    @property
    def g_block_resolutions(self) -> list[int]:
        """Output size of each G block: 8, 16, ..., R."""
        return [G_BOTTOM_WIDTH * 2 ** (i + 1) for i in range(len(self.g_block_channels))]

    @property
    def z_slots(self) -> int:
        """Hierarchical z: one chunk for the first linear layer, one per G block."""
        return len(self.g_block_channels) + 1

    @property
    def z_chunk(self) -> int:
        return self.dim_z // self.z_slots

    @property
    def feature_resolutions(self) -> tuple[int, int, int]:
        """Sizes of the GAN features that are warped: R/4 (the correspondence grid), R/2, R."""
        r = self.resolution
        return (r // 4, r // 2, r)

    @property
    def feature_channels(self) -> dict[int, int]:
        """Channels of G's feature at each warped size."""
        by_size = dict(zip(self.g_block_resolutions, (c for _, c in self.g_block_channels)))
        return {size: by_size[size] for size in self.feature_resolutions}

    # --- BigGAN D and the GAN encoder ----------------------------------------------------
    def _down_blocks(self, ch: int, in_channels: int) -> list[tuple[int, int, bool, int]]:
        """(in, out, downsample, output size) per block of a BigGAN D-style stack."""
        outs = [ch * m for m in D_CHANNEL_MULTIPLIERS[self.resolution]]
        ins = [in_channels] + outs[:-1]
        blocks, size = [], self.resolution
        for i, (cin, cout) in enumerate(zip(ins, outs)):
            down = i < len(outs) - 1
            size = size // 2 if down else size
            blocks.append((cin, cout, down, size))
        return blocks

    @property
    def d_blocks(self) -> list[tuple[int, int, bool, int]]:
        return self._down_blocks(self.d_ch, 3)

    @property
    def e_blocks(self) -> list[tuple[int, int, bool, int]]:
        return self._down_blocks(self.e_ch, 1)

    @property
    def corr_feat_nc(self) -> int:
        """D block-1 plus block-2 channels: what the correspondence residual blocks see."""
        return self.d_blocks[1][1] + self.d_blocks[2][1]

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GCPConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown GCPConfig fields: {', '.join(unknown)}")
        return cls(**data)


# The released checkpoints (DGP BigGAN-256, GCP encoder, correspondence, colorization).
OFFICIAL = GCPConfig(
    name="official", resolution=256, n_classes=1000, dim_z=120, shared_dim=128,
    g_ch=96, d_ch=96, e_ch=64, attention_resolution=64, corr_nonlocal_nc=128, color_ngf=64,
)

# The embedded default weights' networks (SMALL_SEMANTIC below adds one input), trained
# by this project on CPU: about 50 MB in fp32 (g_ch 32 / d_ch 32 / e_ch 16 / ngf 32 with
# 6 SPADE blocks would be 97 MB).
SMALL = GCPConfig(
    name="small", resolution=128, n_classes=1000, dim_z=120, shared_dim=128,
    g_ch=24, d_ch=24, e_ch=12, attention_resolution=32, corr_nonlocal_nc=64, color_ngf=24,
    color_res_blocks=4,
)

# The widths of the golden reference nets (gcp-golden/*_tiny*.pt): fast plumbing tests.
TINY = GCPConfig(
    name="tiny", resolution=256, n_classes=10, dim_z=120, shared_dim=16,
    g_ch=2, d_ch=4, e_ch=4, attention_resolution=64, corr_nonlocal_nc=16, color_ngf=8,
)

# SMALL with the classifier's feature maps as a further input of the colorization net:
# the default weights since their seventh set.
SMALL_SEMANTIC = dataclasses.replace(SMALL, name="small-semantic", semantic_features=True)

CONFIGS = {c.name: c for c in (OFFICIAL, SMALL, SMALL_SEMANTIC, TINY)}
