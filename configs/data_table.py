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
"""
import ml_collections
from ml_collections import config_dict

# SSv2 classes whose meaning mirrors under a horizontal flip: "... from left to right" /
# "... from right to left" (pulling 86/87, pushing 93/94) and "Turning the camera left /
# right while filming something" (166/167). The official SSv1 config uses the same list.
SS_FLIP_PAIRS = ((86, 87), (93, 94), (166, 167))
# The synthetic set's mirrored pairs: left<->right motion, clockwise<->counter-clockwise.
SYNTHETIC_FLIP_PAIRS = ((0, 1), (6, 7))

DATASETS = ('synthetic', 'synthetic_tiny', 'ssv2', 'ssv1', 'k400', 'diving48', 'custom',
            'tfrecord')


def _flat(pairs):
  return tuple(sorted(k for pair in pairs for k in pair))


def dataset_config(name: str) -> ml_collections.ConfigDict:
  """The `dataset` section: where the clips are and how records are handled."""
  _check(name)
  d = ml_collections.ConfigDict()
  d.name = name
  d.format = 'tfds'                # tfds | tfrecord (a directory with manifest.json)
  d.tfds_name = ''                 # TFDS registered name
  d.builder_config = config_dict.placeholder(str)  # TFDS builder config name
  d.builder_module = ''            # module whose import registers the builder
  d.data_dir = config_dict.placeholder(str)  # TFDS data dir (None: TFDS default) or TFRecord dir
  d.manual_dir = config_dict.placeholder(str)  # the raw download, for builders that need one
  d.splits = ml_collections.ConfigDict(dict(train='train', eval='validation', test='validation'))
  d.skip_corrupt = False           # bad records: False -> one-line error, True -> counted skip
  d.flip_pairs = ()                # (a, b): labels that swap under a horizontal flip
  d.no_flip_classes = ()           # never flipped in flip_mode 'no_flip_classes'
  if name in ('synthetic', 'synthetic_tiny'):
    d.tfds_name = 'reversal_pairs'
    d.builder_config = 'small' if name == 'synthetic' else 'tiny'
    d.builder_module = 'input_pipeline.synthetic'
    d.splits.test = 'test'
    d.flip_pairs = SYNTHETIC_FLIP_PAIRS
    d.no_flip_classes = _flat(SYNTHETIC_FLIP_PAIRS)
  elif name in ('ssv2', 'ssv1'):
    d.tfds_name = {'ssv2': 'something_something_v2', 'ssv1': 'something_something_v1'}[name]
    d.builder_config = 'res256'
    d.builder_module = f'input_pipeline.builders.{name}'
    d.flip_pairs = SS_FLIP_PAIRS
    d.no_flip_classes = _flat(SS_FLIP_PAIRS)
  elif name == 'k400':
    d.tfds_name = 'kinetics400'
    d.builder_config = 'res256'
    d.builder_module = 'input_pipeline.builders.kinetics400'
  elif name == 'diving48':
    d.tfds_name = 'diving48'
    d.builder_config = 'res256'
    d.builder_module = 'input_pipeline.builders.diving48'
    d.splits.eval = d.splits.test = 'test'
  elif name == 'custom':
    d.tfds_name = 'custom_videos'
    d.builder_config = 'res256'
    d.builder_module = 'input_pipeline.builders.custom'
    d.splits.test = 'test'
  elif name == 'tfrecord':
    d.format = 'tfrecord'
    d.splits.test = 'test'
  return d


def input_config(name: str) -> ml_collections.ConfigDict:
  """The `input` section: sampling, augmentation and tf.data settings."""
  _check(name)
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
  c.flip_mode = 'no_flip_classes'  # no_flip_classes | swap_labels | off (no list: plain flip)
  c.flip_prob = 0.5
  # Appearance.
  c.randaugment_num_ops = 0        # 0: off; official SS*/Diving-48: 2
  c.randaugment_magnitude = 9.0    # of 10
  c.random_erasing_prob = 0.0      # official SS*/Diving-48: 0.25
  c.random_erasing_mode = 'const'  # const (0 after normalisation) | pixel (N(0, 1) noise)
  c.mean = (123.675, 116.28, 103.53)  # ImageNet, in [0, 255]
  c.std = (58.395, 57.12, 57.375)
  # On-device batch mixing (input_pipeline.mixing); 0 disables each.
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
  if name in ('ssv2', 'ssv1', 'diving48'):
    c.randaugment_num_ops = 2
    c.random_erasing_prob = 0.25
  elif name == 'k400':
    c.sampling = 'dense'
    c.test_num_clips = 4
  elif name in ('custom', 'tfrecord'):
    c.test_num_crops = 1
  elif name in ('synthetic', 'synthetic_tiny'):
    # The CPU demo: 8 of 32 frames at 32 px (from 64), whole frames, no flips: in its
    # 2000 steps it learns fastest without augmentation (measured: crops and label-swapping
    # flips left the rotation pair at chance; train and validation accuracy stay close
    # without them). Tiny (tests): 8 frames at 28 px with crops and label-swapping flips
    # (left<->right and clockwise<->counter-clockwise swap under a horizontal flip).
    tiny = name == 'synthetic_tiny'
    c.num_frames = 8
    c.image_size = c.eval_image_size = 28 if tiny else 32
    c.min_resize = 32
    c.test_num_crops = 1
    c.random_resized_crop = tiny
    c.crop_scale = (0.6, 1.0)
    c.flip_mode = 'swap_labels' if tiny else 'off'
    c.shuffle_buffer = 16 if tiny else 4096
    c.cycle_length = 2 if tiny else 4
    c.num_parallel_calls = 2 if tiny else -1
  return c


def _check(name):
  if name not in DATASETS:
    raise ValueError(f'unknown data set {name!r}; valid names: {", ".join(DATASETS)}')
