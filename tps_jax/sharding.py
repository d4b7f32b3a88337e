"""Distribution in one place: the mesh, parameter/state/batch shardings, host -> global.

The mesh has two axes, ``data`` and ``fsdp`` (``config.mesh``). Batches are split over
both (every device sees a different slice of the global batch); parameters and optimizer
state are either replicated or, big_vision-style, split along their largest divisible
dimension over ``fsdp`` (ZeRO-3 / FSDP). Which tensors are split is data: the regex
rules of ``config.sharding.rules``. Activation hints inside the model are logical axis
names: ``batch`` goes over every mesh axis (:data:`BATCH_AXES`), the others as
``config.sharding.logical_rules`` says.

Nothing else in tps-jax calls ``jax.process_index()`` except to quieten logging.
"""
import math
import re
from typing import Any, Callable, Tuple

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ('data', 'fsdp')  # the mesh; config.mesh has one size field per axis
BATCH_AXES = AXES  # the batch dimension (data and activations) is split over every device


def make_mesh(config, devices=None) -> Mesh:
  """The ``(data, fsdp)`` device mesh of ``config.mesh``; ``-1`` takes the remaining devices.

  Args:
    config: the experiment config (reads ``config.mesh.<axis>`` for each of :data:`AXES`).
    devices: devices to use (default: all of ``jax.devices()``, every process's).

  Returns:
    A ``jax.sharding.Mesh`` with Auto axis types (so logical constraints work).
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = [config.mesh[axis] for axis in AXES]
  if shape.count(-1) > 1:
    raise ValueError(f'config.mesh={tuple(shape)}: at most one axis may be -1')
  known = math.prod(s for s in shape if s != -1)
  if -1 in shape:
    if len(devices) % known:
      raise ValueError(f'config.mesh={tuple(shape)} does not divide {len(devices)} devices')
    shape[shape.index(-1)] = len(devices) // known
  if math.prod(shape) != len(devices):
    raise ValueError(f'config.mesh (data={shape[0]}, fsdp={shape[1]}) needs '
                     f'{math.prod(shape)} devices, {len(devices)} are available')
  try:
    grid = mesh_utils.create_device_mesh(shape, devices)
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.asarray(devices).reshape(shape)  # e.g. fake CPU devices without topology
  return Mesh(grid, AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(AXES))


def logical_rules(config) -> Tuple[Tuple[str, Any], ...]:
  """``nn.logical_axis_rules`` for the model's activation hints: batch + the config's."""
  return (('batch', BATCH_AXES),) + tuple(
      (name, tuple(axes) if isinstance(axes, (list, tuple)) else axes)
      for name, axes in config.sharding.logical_rules)


def _leaf_spec(path: str, shape, mesh: Mesh, config) -> P:
  """The PartitionSpec of one parameter-shaped leaf, by the first matching rule."""
  for pattern, how in config.sharding.rules:
    if re.search(pattern, path):
      break
  else:
    how = 'replicate'
  if how == 'replicate':
    return P()
  if how != 'fsdp':
    raise ValueError(f'config.sharding.rules: unknown strategy {how!r} (replicate | fsdp)')
  n = mesh.shape['fsdp']
  if n == 1 or math.prod(shape) < config.sharding.fsdp_min_size:
    return P()
  # The largest dimension that the fsdp axis divides (big_vision's fsdp rule).
  for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
    if shape[dim] % n == 0:
      spec = [None] * len(shape)
      spec[dim] = 'fsdp'
      return P(*spec)
  return P()


def tree_shardings(tree, mesh: Mesh, config):
  """NamedShardings for a (possibly abstract) params / train-state tree.

  The rule only looks at a leaf's path and shape, so Adam's moments get the sharding of
  their parameter, and scalars (step, counts) are replicated.
  """
  def one(path, leaf):
    name = '/'.join(str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k))))
                    for k in path)
    shape = getattr(leaf, 'shape', ())
    return NamedSharding(mesh, _leaf_spec(name, shape, mesh, config))
  return jax.tree_util.tree_map_with_path(one, tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over every mesh axis; the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES))


def per_example(fn: Callable, mesh: Mesh) -> Callable:
  """``fn(*arrays)`` on each device's share of the batch (arrays and results split on their
  first axis over BATCH_AXES): per-example work with data-dependent control flow, which
  jit alone would replicate (a loop over a split axis) or turn into selects (vmap)."""
  spec = P(BATCH_AXES)
  return jax.shard_map(fn, mesh=mesh, in_specs=spec, out_specs=spec)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def process_split() -> Tuple[int, int]:
  """``(process_index, process_count)``: which part of the data this process reads."""
  return jax.process_index(), jax.process_count()


def local_batch_size(global_batch_size: int, what: str = 'config.batch_size') -> int:
  """The per-process batch; the global batch must split evenly over the devices."""
  n_dev, n_proc = jax.device_count(), jax.process_count()
  if global_batch_size % n_dev:
    raise ValueError(f'{what}={global_batch_size} is not divisible by the '
                     f'{n_dev} devices of the mesh')
  return global_batch_size // n_proc


def host_to_global(batch, mesh: Mesh):
  """Turns this process's numpy batch into global ``jax.Array``s split over the batch axes.

  Each process passes its own ``B_local = B_global / process_count`` examples; the
  result has the global shape and lives on every device of the mesh.
  """
  sharding = batch_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def global_to_host(tree):
  """Every process gets the full value of (batch-sharded) global arrays, as numpy."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, jax.device_get(tree))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def is_main_process() -> bool:
  """Only process 0 writes metrics, plots and files (checkpoints are collective)."""
  return jax.process_index() == 0


def main_process_says(message: str) -> str:
  """Process 0's ``message`` on every process ('' = all is well), so that a refusal only
  process 0 can see (the workdir lock) stops every process at once with the same line."""
  if jax.process_count() == 1:
    return message
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  data = np.zeros(1024, np.uint8)
  raw = message.encode()[:1024]
  data[:len(raw)] = np.frombuffer(raw, np.uint8)
  data = multihost_utils.broadcast_one_to_all(data)
  return bytes(np.asarray(data)).rstrip(b'\0').decode(errors='replace')


def describe(tree_sharding) -> str:
  """One line per distinct spec, for the log: how many leaves are split over fsdp."""
  specs = [s.spec for s in jax.tree.leaves(tree_sharding,
                                            is_leaf=lambda x: isinstance(x, NamedSharding))]
  split = sum(1 for s in specs if any(a is not None for a in s))
  return f'{split}/{len(specs)} state leaves split over fsdp'

