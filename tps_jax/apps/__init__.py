r"""Command-line apps over the library, one flag pattern for all of them (and ``main.py``).

    python -m tps_jax.apps.build --dataset=ssv2 --manual_dir=/data/ssv2 --data_dir=$DATA
    python -m tps_jax.apps.predict --config=configs/ssv2_tps.py --checkpoint=$WORKDIR clip.mp4
    python -m tps_jax.apps.profile --config=configs/ssv2_tps.py --batch=1 --frames=32
    python -m tps_jax.apps.convert --config=configs/ssv2_tps.py --checkpoint=tps.pth --output=DIR

Each app defines its absl flags at its own top level (a library module never defines
one); ``--config`` is always an experiment config file (``config_flags``, locked, so
``--config.model.size=small`` style overrides work and a misspelled field is refused);
the same thing has the same name everywhere (``--checkpoint``, ``--workdir``,
``--data_dir``); :func:`run` turns a bad flag into one line naming it.
"""
from absl import app
from absl import flags

from tps_jax import host


def parse_flags(argv, name: str):
  """absl's parser, but a bad flag (e.g. ``--config.optim.lr``: no such field) is one line."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    cause = e
    while cause.__cause__ is not None or cause.__context__ is not None:
      cause = cause.__cause__ or cause.__context__
    text = str(cause).strip('"\'')
    if isinstance(cause, (AttributeError, KeyError)):  # the config is locked
      text = f'no such config field {text!r} (check the spelling against the config file)'
    raise SystemExit(f'{name}: bad flag: {text}') from None


def run(main, name: str) -> None:
  """``app.run(main)`` with :func:`parse_flags`; ``name`` starts its error lines.

  First :func:`tps_jax.host.configure`: huge-page malloc and XLA's memory-minimizing
  scheduler (what they save on a CPU train step: docs/performance.md, "Host settings").
  """
  host.configure()
  app.run(main, flags_parser=lambda argv: parse_flags(argv, name))
