"""Relative-position-bias indices and the shifted-window mask."""
import numpy as np
import pytest

from configs.model_table import PATTERN_C
from tests.conftest import FIXTURE
from tps_jax import shifts
from tps_jax.models import attention


def _official_index(num_frames, patch):
  pattern = shifts.pattern_offsets(PATTERN_C, (7, 7), (7, 7)) if patch else None
  return attention.bias_index('official', window_cfg=(1, 7, 7), window=(1, 7, 7),
                              num_frames=num_frames, pattern=pattern, temporal_range=8)


def test_official_index_equals_the_released_buffers():
  with np.load(FIXTURE) as f:
    released = f['state_dict/backbone.layers.0.blocks.1.attn.relative_position_index']
    released_old = f['state_dict/backbone.layers.0.blocks.1.attn.relative_position_index_old']
  np.testing.assert_array_equal(_official_index(16, patch=True), released)
  np.testing.assert_array_equal(_official_index(16, patch=False), released_old)


@pytest.mark.parametrize('t', [1, 4, 8, 15])
def test_official_index_is_defined_for_fewer_frames(t):
  idx = _official_index(t, patch=True)
  assert idx.shape == (t, 49, 49)
  assert idx.min() >= 0 and idx.max() < attention.bias_table_rows('official', (1, 7, 7), 8)


def test_official_index_refuses_more_than_16_frames():
  with pytest.raises(ValueError, match=r"at most 16 temporal tokens.*bias='relative'"):
    _official_index(17, patch=True)


def test_relative_index_depends_on_the_true_temporal_offset_only():
  pattern = shifts.pattern_offsets(PATTERN_C, (7, 7), (7, 7))
  idx = attention.bias_index('relative', window_cfg=(1, 7, 7), window=(1, 7, 7),
                             num_frames=32, pattern=pattern, temporal_range=8)
  assert idx.shape == (1, 49, 49)
  s = pattern.reshape(-1)
  dt = idx[0] // 169 - 8  # row block = content offset key - query
  np.testing.assert_array_equal(dt, s[:, None] - s[None, :])
  assert idx.max() < attention.bias_table_rows('relative', (1, 7, 7), 8)


def test_shift_mask_separates_wrapped_regions():
  mask = attention.shift_mask((1, 14, 14), (1, 7, 7), (0, 3, 3))
  assert mask.shape == (1, 4, 49, 49)
  assert (mask[0, 0] == 0).all()  # the top-left window holds one region
  assert (mask[0, 3] == -100).any()  # the bottom-right one mixes wrapped regions
  np.testing.assert_array_equal(mask, np.swapaxes(mask, -1, -2))
