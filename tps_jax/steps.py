"""The step library: the train state, one train step and one eval step, jitted with shardings.

``train_step`` and ``eval_step`` are pure functions, jitted once with NamedSharding in/out
shardings (:func:`jit_steps`), so they run unchanged on one device, a fake CPU mesh or a
multi-host pod. Profiling, the benchmarks and the run (:mod:`tps_jax.train`) import them;
nothing here reads a file.
"""
import functools
from typing import Any, Callable, Dict, Optional, Tuple

import flax
import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import optax

from tps_jax import augment as augment_lib
from tps_jax import inference
from tps_jax import mixing
from tps_jax import optim
from tps_jax import sharding


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, opt_state; apply_fn, tx static) plus two statics."""
  num_classes: int = flax.struct.field(pytree_node=False, default=0)
  lr_fn: Callable[[Any], Any] = flax.struct.field(pytree_node=False, default=None)


def clip_shape(config) -> Tuple[int, int, int, int]:
  """``(T, H, W, 3)`` of one training clip."""
  return (config.input.num_frames, config.input.image_size, config.input.image_size, 3)


def create_train_state(config, model, rng, *, mesh=None, params=None,
                       num_train_steps: Optional[int] = None,
                       steps_per_epoch: Optional[float] = None,
                       abstract: bool = False) -> TrainState:
  """A TrainState whose parameters and optimizer state are born sharded.

  Args:
    config: the experiment config.
    model: ``tps_jax.models.build_model(config.model, num_classes)``.
    rng: PRNG key of the parameter initialisation.
    mesh: device mesh; when given, the state is created by ``jit`` with the
      ``sharding.tree_shardings`` out shardings (FSDP-split where the rules say so).
    params: start from these parameters (e.g. ``config.init_from``) instead of ``model.init``.
    num_train_steps, steps_per_epoch: length of the lr schedule; default
      ``config.num_train_steps`` and that many steps per epoch.
    abstract: return ``jax.ShapeDtypeStruct`` leaves carrying their shardings (the
      target of a checkpoint restore) and compute nothing.

  Returns:
    The (possibly abstract) TrainState.
  """
  num_train_steps = num_train_steps or max(config.num_train_steps, 1)
  steps_per_epoch = steps_per_epoch or num_train_steps / max(config.num_epochs, 1e-9)
  clip = jnp.zeros((1,) + clip_shape(config), jnp.float32)
  init_params = lambda r: model.init(r, clip, train=False)['params']
  abstract_params = jax.eval_shape(init_params, rng)
  lr_fn = optim.learning_rate_schedule(config, num_train_steps, steps_per_epoch)
  tx = optim.create_optimizer(config, lr_fn, abstract_params)

  def init(r, p):
    p = init_params(r) if p is None else p
    return TrainState.create(apply_fn=model.apply, params=p, tx=tx,
                             num_classes=model.num_classes, lr_fn=lr_fn)

  shapes = jax.eval_shape(init, rng, params)
  if mesh is None:
    if abstract:
      return shapes
    return jax.jit(init)(rng, params)
  shardings = sharding.tree_shardings(shapes, mesh, config)
  if abstract:
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        shapes, shardings)
  if params is not None:  # host arrays: place them once, in their target shardings
    params = jax.device_put(params, shardings.params)
  with jax.set_mesh(mesh):
    return jax.jit(init, out_shardings=shardings)(rng, params)


def _forward_loss(params, state, video, targets, labels, rng):
  logits, _ = state.apply_fn({'params': params}, video, train=True, rngs={'dropout': rng})
  loss = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets).mean()
  correct = jnp.mean(jnp.argmax(logits, -1) == labels)
  return loss, correct


def soft_targets(labels: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
  """One-hot targets with label smoothing (mmaction's: ``(1 - e) * onehot + e / K``)."""
  return jax.nn.one_hot(labels, num_classes) * (1.0 - smoothing) + smoothing / num_classes


AUGMENT_STREAM = 0x61756700  # folded into the step's key for the clips' augmentation


def train_step(state: TrainState, batch: Dict[str, jax.Array], rng: jax.Array, *,
               config, augment: Optional[Callable] = None
               ) -> Tuple[TrainState, Dict[str, jax.Array]]:
  """One optimizer step: (device augmentation,) mixup/cutmix, label smoothing, grads, AdamW.

  Args:
    state: the TrainState.
    batch: ``{'video': (B, T, H, W, 3) float32, 'label': (B,) int32}`` (global batch);
      uint8 crops with ``augment``.
    rng: the run's base key; the step's dropout / drop-path / mixing / augmentation keys
      are folded from it and ``state.step``, so a resumed run draws the same randomness.
    config: the experiment config (static: bind with ``functools.partial``).
    augment: ``(keys (B, 2), video, label) -> (video, label)``, one key per clip
      (:func:`device_augment`); None when the host augmented (``config.input.augment_on``).

  Returns:
    ``(new_state, metrics)``; a step with a non-finite loss or gradient leaves params and
    optimizer state unchanged and reports ``nonfinite=1`` (the loop then stops).
  """
  rng = jax.random.fold_in(rng, state.step)
  mix_rng, drop_rng = jax.random.split(rng)
  video, labels = batch['video'], batch['label']
  if augment is not None:  # one key per clip of the global batch: the mesh does not matter
    keys = jax.random.split(jax.random.fold_in(rng, AUGMENT_STREAM), video.shape[0])
    video, labels = augment(keys, video, labels)
  targets = soft_targets(labels, state.num_classes, config.loss.label_smoothing)
  video, targets = mixing.mix_batch(mix_rng, video, targets, config)
  grad_fn = jax.value_and_grad(_forward_loss, has_aux=True)
  k = config.optim.grad_accum_steps
  with nn.logical_axis_rules(sharding.logical_rules(config)):
    if k == 1:
      (loss, acc), grads = grad_fn(state.params, state, video, targets, labels, drop_rng)
    else:  # k micro-batches in a scan: the memory of one, the gradient of all
      micro = lambda x: x.reshape((k, x.shape[0] // k) + x.shape[1:])
      def body(carry, xs):
        i, v, t, l = xs
        (loss_i, acc_i), g = grad_fn(state.params, state, v, t, l, jax.random.fold_in(drop_rng, i))
        return jax.tree.map(jnp.add, carry, (loss_i, acc_i, g)), None
      zeros = (0.0, 0.0, jax.tree.map(jnp.zeros_like, state.params))
      (loss, acc, grads), _ = jax.lax.scan(
          body, zeros, (jnp.arange(k), micro(video), micro(targets), micro(labels)))
      loss, acc, grads = loss / k, acc / k, jax.tree.map(lambda g: g / k, grads)
  grad_norm = optax.tree.norm(grads)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
  new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                            opt_state=keep(opt_state, state.opt_state))
  metrics = {'loss': loss, 'accuracy': acc, 'grad_norm': grad_norm,
             'param_norm': optax.tree.norm(state.params),
             'learning_rate': state.lr_fn(state.step),
             'nonfinite': 1.0 - finite.astype(jnp.float32)}
  return new_state, metrics


def eval_step(state: TrainState, batch: Dict[str, jax.Array], *, config) -> Dict[str, jax.Array]:
  """Per-video scores averaged over the test views (the official protocol).

  Args:
    state: the TrainState (only its ``apply_fn`` and ``params`` are read).
    batch: ``{'video': (B, V, T, H, W, 3)}``; V = clips x crops views of each video.
    config: the experiment config (see :func:`tps_jax.inference.scores`).

  Returns:
    ``{'probs': (B, K) mean softmax over views, 'logits': (B, K) mean logits}``, plus
    the batch's ``label`` and ``mask`` when present.
  """
  out = inference.scores(state.apply_fn, state.params, batch['video'], config=config)
  out.update({k: batch[k] for k in ('label', 'mask') if k in batch})  # passed through
  return out


AUGMENT_ON = ('host', 'device')  # config.input.augment_on


def device_augment(config, mesh, info) -> Optional[Callable]:
  """The train step's ``augment`` for ``config.input.augment_on='device'``, else None.

  Each device augments its own clips (``sharding.per_example``), one after another
  (``lax.map``): each clip pays only for the ops it drew (a ``lax.switch`` under ``vmap``
  would run all 15 RandAugment ops on every clip).
  """
  if config.input.augment_on == 'host':
    return None
  spec = augment_lib.spec_from_config(config.input, tuple(int(k) for k in info.flip_label_map),
                                      tuple(int(k) for k in info.no_flip_classes))

  def clips(keys, video, label):
    return jax.lax.map(lambda a: augment_lib.augment_clip(*a, spec), (keys, video, label))
  return sharding.per_example(clips, mesh)


def jit_steps(config, mesh, state_shardings, info=None):
  """``(train_step, eval_step)`` jitted with NamedShardings (state donated to the step).

  ``info`` (the data set's): its flip rules, for ``config.input.augment_on='device'``.
  """
  batch = sharding.batch_sharding(mesh)
  repl = sharding.replicated(mesh)
  augment = device_augment(config, mesh, info) if info is not None else None
  if augment is None and config.input.augment_on == 'device':
    raise ValueError("config.input.augment_on='device' needs the data set's info")
  p_train = jax.jit(functools.partial(train_step, config=config, augment=augment),
                    in_shardings=(state_shardings, batch, repl),
                    out_shardings=(state_shardings, repl), donate_argnums=(0,))
  p_eval = jax.jit(functools.partial(eval_step, config=config),
                   in_shardings=(state_shardings, batch), out_shardings=batch)
  return p_train, p_eval
