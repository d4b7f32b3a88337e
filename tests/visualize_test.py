"""The notebook's figure helpers: data is right, plots render."""
import jax
import matplotlib
import numpy as np
import pytest

from configs.model_table import PATTERN_C, model_config
from tps_jax import visualize
from tps_jax.models import build_model

matplotlib.use('Agg')


def test_source_frames_follow_the_mosaic():
  src = visualize.source_frames(PATTERN_C, (7, 7), frame=0, num_frames=8)
  assert src[0, 0] == 4 and src[1, 1] == 0 and src[2, 2] == 4  # t - s mod T
  assert src[0, 1] == 7 and src[6, 6] == src[0, 0]


def test_channel_sources_mark_one_eighth_each_way():
  src = visualize.channel_sources(num_heads=2, head_dim=16)
  np.testing.assert_array_equal(src[:4], [-1, -1, 1, 1])
  assert (src[4:16] == 0).all() and (src[16:20] == [-1, -1, 1, 1]).all()


@pytest.mark.slow
def test_attention_of_a_patch_shift_block_spreads_over_nine_frames():
  cfg = model_config('tps', 'tiny')
  cfg.embed_dim, cfg.depths, cfg.num_heads, cfg.patch_size = 16, (2, 2), (1, 2), (1, 4, 4)
  model = build_model(cfg, 4)
  clip = jax.random.normal(jax.random.key(0), (1, 16, 28, 28, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(clip)
  maps = visualize.attention_maps(model, variables, clip)
  assert maps['layers_0/blocks_1'].shape == (1, 16, 1, 1, 49, 49)
  by_frame, query_frame = visualize.attention_by_frame(
      maps['layers_0/blocks_1'], PATTERN_C, (7, 7), frame=5, query=(3, 3))
  assert by_frame.shape == (16, 7, 7) and np.isclose(by_frame.sum(), 1.0, atol=1e-5)
  assert ((by_frame.sum(axis=(1, 2)) > 0).sum()) == 9  # pattern C spans 9 frames
  assert query_frame == (5 + 4) % 16
  for fig in (visualize.plot_mosaic(PATTERN_C, num_frames=16),
              visualize.plot_channel_shift(),
              visualize.plot_attention_by_frame(by_frame, (3, 3), query_frame)):
    assert fig.axes


@pytest.mark.slow
def test_clip_grid_history_and_confusion_plots(tmp_path):
  from tps_jax import evaluation  # pylint: disable=g-import-not-at-top
  videos = np.random.default_rng(0).integers(0, 255, (2, 16, 8, 8, 3), dtype=np.uint8)
  assert len(visualize.plot_clips(videos, [0, 1], ['left', 'right']).axes) == 16
  with open(tmp_path / 'history.jsonl', 'w') as f:
    f.write('{"step": 10, "train_loss": 2.0}\n{"step": 20, "train_loss": 1.0, '
            '"val_top1": 0.5}\n')
  axes = visualize.plot_histories({'tps': str(tmp_path)}).axes
  assert axes[0].lines and axes[1].lines  # train loss, validation top-1
  confusion = np.array([[3, 1], [0, 4]])
  evaluation.write_confusion(str(tmp_path / 'c.csv'), confusion, ['a', 'b'])
  matrix, names = visualize.read_confusion(str(tmp_path / 'c.csv'))
  np.testing.assert_array_equal(matrix, confusion)
  assert names == ['a', 'b'] and visualize.plot_confusion(matrix, names).axes
