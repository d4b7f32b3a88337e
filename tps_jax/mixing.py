"""Mixup and CutMix on device, in JAX (jit-able; the batch may be a sharded global array).

timm's `Mixup` in 'batch' mode: each example is mixed with its mirror in the batch
(`x[::-1]`) with one lambda per batch. With both enabled, CutMix is chosen with
probability `mix_switch_prob`; the whole thing happens with probability `mix_prob`.
CutMix pastes one box through *all frames* (the box does not move over time), and lambda
is corrected to the pasted area, so the targets' mass stays 1.
"""
import jax
import jax.numpy as jnp


def cutmix_box(rng, height: int, width: int, lam):
  """timm's `rand_bbox`: a box of area ~(1 - lam), centre uniform, clipped to the image.

  Returns:
    (mask, lam): bool (height, width), True inside the box; lam = 1 - box area fraction.
  """
  cut = jnp.sqrt(1.0 - lam)
  cut_h = (height * cut).astype(jnp.int32)
  cut_w = (width * cut).astype(jnp.int32)
  r_y, r_x = jax.random.split(rng)
  cy = jax.random.randint(r_y, (), 0, height)
  cx = jax.random.randint(r_x, (), 0, width)
  y0, y1 = jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cy + cut_h // 2, 0, height)
  x0, x1 = jnp.clip(cx - cut_w // 2, 0, width), jnp.clip(cx + cut_w // 2, 0, width)
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  mask = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
  return mask, 1.0 - (y1 - y0) * (x1 - x0) / (height * width)


def mix_batch(rng, video, targets, config):
  """Mixup / CutMix of a batch, chosen by `config.input`; identity if both are off.

  Args:
    rng: a JAX PRNG key.
    video: (B, T, H, W, C) float clips.
    targets: (B, num_classes) one-hot (or smoothed) targets.
    config: reads config.input.{mixup_alpha, cutmix_alpha, mix_prob, mix_switch_prob};
      an alpha of 0 disables that method.

  Returns:
    (mixed video, mixed targets), same shapes and dtypes.
  """
  c = config.input
  use_mixup, use_cutmix = c.mixup_alpha > 0, c.cutmix_alpha > 0
  if not (use_mixup or use_cutmix) or c.mix_prob <= 0:
    return video, targets
  r_apply, r_switch, r_mixup, r_cutmix, r_box = jax.random.split(rng, 5)
  _, _, height, width, _ = video.shape
  partner = video[::-1]
  mixed, lam = video, jnp.float32(1.0)
  if use_mixup:
    lam = jax.random.beta(r_mixup, c.mixup_alpha, c.mixup_alpha)
    mixed = (lam * video + (1.0 - lam) * partner).astype(video.dtype)
  if use_cutmix:
    mask, lam_cut = cutmix_box(r_box, height, width,
                               jax.random.beta(r_cutmix, c.cutmix_alpha, c.cutmix_alpha))
    cut = jnp.where(mask[None, None, :, :, None], partner, video)
    choose_cutmix = (jax.random.uniform(r_switch) < c.mix_switch_prob) if use_mixup else True
    mixed = jnp.where(choose_cutmix, cut, mixed)
    lam = jnp.where(choose_cutmix, lam_cut, lam)
  apply = jax.random.uniform(r_apply) < c.mix_prob
  lam = jnp.where(apply, lam, 1.0).astype(targets.dtype)
  video = jnp.where(apply, mixed, video)
  return video, lam * targets + (1.0 - lam) * targets[::-1]
