"""The shift operators against NumPy loop references, under jit/grad and on a fake mesh."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.model_table import PATTERN_C
from tps_jax import shifts

PATTERN_DICT = {(0, 0): -4, (0, 1): 1, (0, 2): 2, (1, 0): -1, (1, 1): 0, (1, 2): 3,
                (2, 0): -2, (2, 1): -3, (2, 2): 4}  # pattern C as the paper writes it, position -> shift


def _clip(shape=(2, 16, 14, 14, 8), seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _patch_shift_loop(x, window):
  out = np.empty_like(x)
  _, t, h, w, _ = x.shape
  for ti in range(t):
    for hi in range(h):
      for wi in range(w):
        s = PATTERN_DICT[((hi % window) % 3, (wi % window) % 3)]
        out[:, ti, hi, wi] = x[:, (ti - s) % t, hi, wi]
  return out


@pytest.mark.slow
@pytest.mark.parametrize('impl', ['gather', 'roll'])
def test_patch_shift_equals_explicit_loop_over_t_h_w(impl):
  x = _clip()
  got = shifts.patch_shift(jnp.asarray(x), PATTERN_C, (7, 7), impl=impl)
  np.testing.assert_array_equal(np.asarray(got), _patch_shift_loop(x, 7))


@pytest.mark.parametrize('impl', ['gather', 'roll'])
@pytest.mark.parametrize('t', [3, 8, 16, 24])
def test_patch_shift_then_inverse_is_identity(impl, t):
  x = jnp.asarray(_clip((1, t, 8, 12, 4)))
  y = shifts.patch_shift(x, PATTERN_C, (4, 4), impl=impl)
  back = shifts.patch_shift(y, PATTERN_C, (4, 4), inverse=True, impl=impl)
  np.testing.assert_array_equal(np.asarray(back), np.asarray(x))
  assert not np.array_equal(np.asarray(y), np.asarray(x))


def test_patch_shift_uses_window_local_positions():
  offsets = shifts.pattern_offsets(PATTERN_C, (7, 7), (14, 14))
  assert offsets[0, 0] == offsets[7, 7] == -4  # window starts restart the mosaic
  assert offsets[6, 6] == PATTERN_DICT[(0, 0)]  # 6 % 3 == 0
  assert offsets[1, 2] == 3


def test_channel_shift_moves_exactly_the_stated_channels():
  heads, hd, t = 3, 16, 5
  x = _clip((2, t, 2, 3, heads * hd))
  got = np.asarray(shifts.channel_shift(jnp.asarray(x), heads, 8))
  fold = hd // 8
  xh, gh = x.reshape(2, t, 2, 3, heads, hd), got.reshape(2, t, 2, 3, heads, hd)
  for ti in range(t):
    prev, nxt = max(ti - 1, 0), min(ti + 1, t - 1)  # edges keep their own value
    np.testing.assert_array_equal(gh[:, ti, ..., :fold], xh[:, prev, ..., :fold])
    np.testing.assert_array_equal(gh[:, ti, ..., fold:2 * fold], xh[:, nxt, ..., fold:2 * fold])
    np.testing.assert_array_equal(gh[:, ti, ..., 2 * fold:], xh[:, ti, ..., 2 * fold:])


def test_shifts_work_under_jit_and_grad():
  x = jnp.asarray(_clip((1, 8, 7, 7, 16)))
  w = jnp.asarray(_clip((1, 8, 7, 7, 16), seed=1))

  def loss(x):  # one head of 16 channels: channels 0-3 are channel-shifted
    y = shifts.patch_shift(shifts.channel_shift(x, 1), PATTERN_C, (7, 7))
    return jnp.sum(y * w)

  g = jax.jit(jax.grad(loss))(x)
  # The ops are permutations (plus edge copies): the gradient routes w back by the inverse.
  expected = shifts.patch_shift(w, PATTERN_C, (7, 7), inverse=True)
  np.testing.assert_allclose(np.asarray(g)[..., 4:], np.asarray(expected)[..., 4:], rtol=1e-6)
  assert not np.allclose(np.asarray(g)[..., :4], np.asarray(expected)[..., :4])


def test_patch_shift_on_a_fake_8_device_mesh():
  code = textwrap.dedent("""
      import os
      os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
      import jax, jax.numpy as jnp, numpy as np
      from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      from configs.model_table import PATTERN_C
      from tps_jax import shifts
      mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ('data', 'model'))
      x = np.random.default_rng(0).normal(size=(4, 8, 14, 14, 6)).astype(np.float32)
      xs = jax.device_put(x, NamedSharding(mesh, P('data', None, None, None, 'model')))
      f = jax.jit(lambda v: shifts.patch_shift(v, PATTERN_C, (7, 7)))
      np.testing.assert_array_equal(np.asarray(f(xs)), np.asarray(f(jnp.asarray(x))))
      print('ok', len(jax.devices()))
  """)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  res = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True, text=True,
                       env={**os.environ, 'PYTHONPATH': root}, timeout=300)
  assert res.returncode == 0, res.stderr[-2000:]
  assert 'ok 8' in res.stdout


def test_gather_custom_vjp_equals_the_derived_gradient_of_the_rolls():
  x = jnp.asarray(_clip((2, 8, 14, 14, 4)))
  w = jnp.asarray(_clip((2, 8, 14, 14, 4), seed=2))

  def grad(impl):
    def loss(x):
      y = shifts.patch_shift(x, PATTERN_C, (7, 7), impl=impl) * w
      return jnp.sum(shifts.patch_shift(y, PATTERN_C, (7, 7), inverse=True, impl=impl) ** 2)
    return jax.grad(loss)(x)

  np.testing.assert_allclose(np.asarray(grad('gather')), np.asarray(grad('roll')), rtol=1e-6)
