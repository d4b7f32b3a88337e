"""The synthetic renderer: reversed classes are exact time reversals, up to noise."""
import numpy as np
import pytest

from input_pipeline.synthetic import render

SPEC = render.RenderSpec(num_frames=12, height=32, width=32)


@pytest.mark.parametrize('pair', range(5))
def test_reversed_class_is_the_time_reversal_of_the_forward_clip_up_to_noise(pair):
  forward = render.render_clip((4, 2), 2 * pair, SPEC).astype(float)
  backward = render.render_clip((4, 2), 2 * pair + 1, SPEC).astype(float)
  reversal_error = np.abs(backward - forward[::-1]).mean()
  assert reversal_error < 2 * SPEC.noise_std  # two independent noise draws
  assert np.abs(backward - forward).mean() > reversal_error  # it is not static
  other = render.render_clip((5, 2), 2 * pair + 1, SPEC).astype(float)
  assert np.abs(other - forward[::-1]).mean() > 3 * reversal_error


@pytest.mark.parametrize('pair', range(5))
def test_without_noise_the_reversal_is_exact(pair):
  forward = render.render_clip((1,), 2 * pair, SPEC, noise=False)
  backward = render.render_clip((1,), 2 * pair + 1, SPEC, noise=False)
  np.testing.assert_array_equal(backward, forward[::-1])


def test_rendering_is_deterministic_and_seed_dependent():
  a = render.render_clip((0, 0, 3), 4, SPEC)
  np.testing.assert_array_equal(a, render.render_clip((0, 0, 3), 4, SPEC))
  assert not np.array_equal(a, render.render_clip((0, 0, 4), 4, SPEC))


def test_clip_shape_and_dtype():
  clip = render.render_clip((0,), 0, SPEC)
  assert clip.shape == (12, 32, 32, 3) and clip.dtype == np.uint8


def test_labels_go_round_robin_so_splits_are_balanced():
  counts = np.bincount([render.clip_label(i) for i in range(1000)])
  assert counts.tolist() == [100] * 10


def test_flip_pairs_are_the_horizontally_mirrored_classes():
  names = render.CLASS_NAMES
  assert {(names[a], names[b]) for a, b in render.FLIP_PAIRS} == {
      ('moving_left_to_right', 'moving_right_to_left'),
      ('rotating_clockwise', 'rotating_counterclockwise')}


def test_unknown_label_raises():
  with pytest.raises(ValueError, match='label 10 outside'):
    render.render_clip((0,), 10, SPEC)
