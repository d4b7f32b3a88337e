"""Model tables: architecture names and Swin size variants, composed by experiment configs."""
import ml_collections

# Swin variants (Liu et al.); TPS keeps the 2D Swin widths.
SIZES = {
    'tiny': dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'small': dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'base': dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'large': dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}

# Mosaic pattern C of the paper: s[h % 3][w % 3] = temporal shift of that window position.
PATTERN_C = ((-4, 1, 2), (-1, 0, 3), (-2, -3, 4))
# Mosaics by name (config.model.shift_pattern takes any). Only C is in the released code;
# the others are smaller mosaics of the same kind for ablations (docs/ablation.md): every
# offset equally often in each 3x3 / 2x2 tile.
PATTERNS = {
    'C': PATTERN_C,                                  # offsets -4..4: 9 frames
    'latin3': ((-1, 0, 1), (0, 1, -1), (1, -1, 0)),  # offsets -1..1: 3 frames
    'square2': ((-1, 0), (1, 2)),                    # offsets -1..2: 4 frames
}

# Per-architecture defaults that differ from TPS.
ARCH_DEFAULTS = {
    'tps': dict(window_size=(1, 7, 7), bias='official'),
    'swin2d': dict(window_size=(1, 7, 7), bias='relative'),
    'tsm': dict(window_size=(1, 7, 7), bias='relative'),
    'video_swin': dict(window_size=(8, 7, 7), bias='relative'),
    'patch_only': dict(window_size=(1, 7, 7), bias='relative'),    # TPS without channel shift
    'channel_only': dict(window_size=(1, 7, 7), bias='relative'),  # TPS without patch shift
}


def model_config(arch: str = 'tps', size: str = 'tiny') -> ml_collections.ConfigDict:
  """Returns the model section of a config (read by ``tps_jax.models.build_model``)."""
  if arch not in ARCH_DEFAULTS:
    raise ValueError(f'config.model.arch={arch!r} is not one of {sorted(ARCH_DEFAULTS)}')
  if size not in SIZES:
    raise ValueError(f'config.model.size={size!r} is not one of {sorted(SIZES)}')
  c = ml_collections.ConfigDict()
  c.arch = arch                    # tps | swin2d | tsm | video_swin | patch_only | channel_only
  c.size = size                    # informational: the SIZES row the numbers came from
  c.embed_dim = SIZES[size]['embed_dim']
  c.depths = SIZES[size]['depths']
  c.num_heads = SIZES[size]['num_heads']
  c.patch_size = (2, 4, 4)
  c.window_size = ARCH_DEFAULTS[arch]['window_size']
  c.mlp_ratio = 4.0
  c.qkv_bias = True
  c.drop_path_rate = 0.1
  c.attn_drop_rate = 0.0
  c.head_dropout_rate = 0.5        # the I3D head of the official configs
  c.bias = ARCH_DEFAULTS[arch]['bias']  # official | relative
  c.shift_pattern = PATTERN_C      # mosaic, indexed [h % rows][w % cols] in window coords
  c.channel_shift_div = 8          # TSM: 1/8 of each head's channels from t-1, 1/8 from t+1
  c.dtype = 'float32'              # compute dtype (params stay float32): float32 | bfloat16
  c.remat = False                  # nn.remat each block (saves activation memory)
  c.shift_impl = 'gather'          # gather | roll: two implementations of the patch shift
  return c
