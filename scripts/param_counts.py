"""Writes docs/param_counts.md: parameters of every architecture x size (jax.eval_shape, no compute).

    python scripts/param_counts.py
"""
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs.model_table import ARCH_DEFAULTS, SIZES, model_config  # pylint: disable=g-import-not-at-top
from tps_jax.models import build_model, count_params  # pylint: disable=g-import-not-at-top


def counts(arch: str, size: str, num_classes: int = 400):
  model = build_model(model_config(arch, size), num_classes)
  clip = jax.ShapeDtypeStruct((1, 32, 224, 224, 3), jnp.float32)
  params = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), clip)['params']
  total = count_params(params)
  return total - count_params(params['head']), total


def main():
  lines = ['| arch (bias) | ' + ' | '.join(SIZES) + ' |', '|---' * (len(SIZES) + 1) + '|']
  for arch in ARCH_DEFAULTS:
    row = [f'{counts(arch, s)[0]:,}' for s in SIZES]
    lines.append(f'| {arch} ({ARCH_DEFAULTS[arch]["bias"]}) | ' + ' | '.join(row) + ' |')
  text = ('Backbone parameters (without the classification head; 32x224x224 input; '
          'written by `scripts/param_counts.py`).\n\n' + '\n'.join(lines) + '\n')
  out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'param_counts.md')
  with open(out, 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  main()
