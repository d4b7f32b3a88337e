"""Data-set table: the `dataset` and `input` config sections, by data-set name.

Experiment configs compose `dataset_config(name)` and `input_config(name)` with a model
row of `model_table.py`. Values of the paper's data sets come from the official TPS
mmaction configs (configs/recognition/tps/swin_tiny_2D_patch244_tps_*.py): SSv1/SSv2/
Diving-48 sample 32 frames uniformly, K400 32 frames 2 apart; training crops
RandomResizedCrop(0.08-1, 3/4-4/3) of 256-short-side frames to 224, flips (SSv1/SSv2 never
flip classes 86, 87, 93, 94, 166, 167), and SSv1/SSv2/Diving-48 add RandAugment (2 ops,
magnitude 9) and random erasing (p 0.25); validation resizes to 256 and centre-crops 224;
testing takes 3 crops of 224 of one clip (SSv1/SSv2/Diving-48) or 4 clips (K400).
Label smoothing (0.1 SSv1/SSv2, 0.02 Diving-48) belongs to the loss, in the train config.
How a data set is stored (names, builders, splits, flip pairs) is `input_pipeline/
registry.py`'s; how it is trained on is `RECIPES` here, over `input_config`'s defaults.
"""
import ml_collections
from ml_collections import config_dict

from input_pipeline import registry

# The official SS*/Diving-48 augmentation (RandAugment 2 ops, random erasing p 0.25).
_SS = dict(randaugment_num_ops=2, random_erasing_prob=0.25)
# The CPU demo: 8 of 32 frames at 32 px (from 64), whole frames, no flips: in its 2000
# steps it learns fastest without augmentation (measured: crops and label-swapping flips
# left the rotation pair at chance). Tiny (tests): 8 frames at 28 px with crops and
# label-swapping flips.
# Augmentation on the device (the default): the demo and the README's results table.
_SYNTHETIC = dict(num_frames=8, image_size=32, eval_image_size=32, min_resize=32,
                  test_num_crops=1, random_resized_crop=False, crop_scale=(0.6, 1.0),
                  flip_mode='off', shuffle_buffer=4096, cycle_length=4, num_parallel_calls=-1)

# Per data set of `registry.SPECS` (docs/extending_datasets.md): how its `input` section
# differs from `input_config`'s defaults (sampling, sizes, crops, flips, RandAugment,
# erasing, test views, where augmentation runs, tf.data).
RECIPES = {
    'synthetic': _SYNTHETIC,
    'synthetic_tiny': dict(_SYNTHETIC, image_size=28, eval_image_size=28,
                           random_resized_crop=True, flip_mode='swap_labels',
                           shuffle_buffer=16, cycle_length=2, num_parallel_calls=2),
    # The CI guard's set: rendered at 32x32, read at 16x16 (configs/synthetic_guard.py). Host
    # augmentation: the guard's bound and the ablation were measured with it, and the
    # device's uint8 wire rounds the 2x-downsampled frames, which makes other runs of the
    # distribution.
    'synthetic_mini': dict(_SYNTHETIC, image_size=16, eval_image_size=16, min_resize=16,
                           augment_on='host'),
    'ssv2': _SS,
    'ssv1': _SS,
    'k400': dict(sampling='dense', test_num_clips=4),
    'diving48': _SS,
    'custom': dict(test_num_crops=1),
    'tfrecord': dict(test_num_crops=1),
}


def dataset_config(name: str) -> ml_collections.ConfigDict:
  """The `dataset` section: where the clips are and how records are handled."""
  spec = _spec(name)
  d = ml_collections.ConfigDict()
  d.name = name
  d.format = spec.format           # tfds | tfrecord (a directory with manifest.json)
  d.tfds_name = spec.tfds_name     # TFDS registered name
  # TFDS builder config name (res256: short side 256; res128: 128).
  d.builder_config = config_dict.placeholder(str)
  d.builder_config = spec.default_builder_config
  d.builder_module = spec.builder_module  # module whose import registers the builder
  d.data_dir = config_dict.placeholder(str)  # TFDS data dir (None: TFDS default) or TFRecord dir
  d.manual_dir = config_dict.placeholder(str)  # the raw download, for builders that need one
  d.splits = ml_collections.ConfigDict(dict(spec.splits))
  d.skip_corrupt = False           # bad records: False -> one-line error, True -> counted skip
  # Preparing from manual_dir: False -> a missing/unreadable video stops with one line,
  # True -> skipped, counted and listed in skipped_<split>.txt of the prepared data.
  d.skip_unreadable = False
  d.flip_pairs = spec.flip_pairs   # (a, b): labels that swap under a horizontal flip
  d.no_flip_classes = spec.no_flip_classes  # never flipped in flip_mode 'no_flip_classes'
  return d


def input_config(name: str) -> ml_collections.ConfigDict:
  """The `input` section: sampling, augmentation and tf.data settings."""
  _spec(name)
  c = ml_collections.ConfigDict()
  # Sampling.
  c.num_frames = 32                # frames per clip
  c.sampling = 'uniform'           # uniform (SS*/Diving-48) | dense (K400)
  c.frame_interval = 2             # dense sampling only
  c.test_num_clips = 1             # temporal test views
  c.test_num_crops = 3             # spatial test views: 1 (centre) | 3 (along the long side)
  # Spatial.
  c.image_size = 224               # training crop
  c.eval_image_size = 224          # eval crop
  c.min_resize = 256               # eval with 1 crop: short side resized to this, centre crop
  c.random_resized_crop = True     # False: training uses the eval centre crop
  c.crop_scale = (0.08, 1.0)       # area fraction of the random resized crop
  c.crop_ratio = (3 / 4, 4 / 3)    # aspect range of the random resized crop
  # Where flip, RandAugment, normalisation and random erasing run: 'host' (tf.data, float32
  # clips on the wire) | 'device' (tps_jax.augment in the train step; the host sends the
  # uint8 crop, 4x fewer bytes and none of the per-clip augmentation CPU time).
  c.augment_on = 'device'
  c.flip_mode = 'no_flip_classes'  # no_flip_classes | swap_labels | off (no list: plain flip)
  c.flip_prob = 0.5
  # Appearance.
  c.randaugment_num_ops = 0        # 0: off; official SS*/Diving-48: 2
  c.randaugment_magnitude = 9.0    # of 10
  c.random_erasing_prob = 0.0      # official SS*/Diving-48: 0.25
  c.random_erasing_mode = 'const'  # const (0 after normalisation) | pixel (N(0, 1) noise)
  c.mean = (123.675, 116.28, 103.53)  # ImageNet, in [0, 255]
  c.std = (58.395, 57.12, 57.375)
  # On-device batch mixing (tps_jax.mixing); 0 disables each.
  c.mixup_alpha = 0.0
  c.cutmix_alpha = 0.0
  c.mix_prob = 1.0                 # probability of mixing a batch at all
  c.mix_switch_prob = 0.5          # with both on: probability of cutmix
  # tf.data.
  c.shuffle_buffer = 1024          # records permuted together (block shuffle)
  c.cycle_length = 8               # files read in parallel
  c.num_parallel_calls = -1        # -1: AUTOTUNE
  c.num_threads = 0                # tf.data thread pool size; 0: TF's default (all cores)
  c.prefetch = 2                   # batches
  c.update(RECIPES[name])
  return c


def _spec(name):
  try:
    return registry.SPECS[name]
  except KeyError:
    raise ValueError(f'unknown data set {name!r}; valid names: '
                     f'{", ".join(registry.SPECS)}') from None
