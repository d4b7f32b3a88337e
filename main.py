"""Trains and evaluates TPS video transformers; everything else lives in ``tps_jax/``.

    python main.py --config=configs/synthetic_tps.py --workdir=workdir/synthetic_tps
    python main.py --config=configs/ssv2_tps.py --workdir=gs://... \
        --config.dataset.manual_dir=/data/ssv2 --config.init_from=/ckpt/tps_k400
    python main.py --config=configs/ssv2_tps.py --workdir=DIR --mode=evaluate

Running the same command again resumes from the workdir's latest checkpoint (exit code
143 / 130 after SIGTERM / SIGINT saved and stopped a run; 1 on an error). On several
hosts add ``--multiprocess`` (TPU pods, SLURM: auto-detected; elsewhere also pass
``--coordinator_address``, ``--num_processes`` and ``--process_id``).
"""
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tps_jax import apps

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'experiment config file',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'checkpoints, metrics and plots go here')
flags.DEFINE_enum('mode', 'train_and_evaluate', ['train', 'evaluate', 'train_and_evaluate'],
                  'train only, evaluate a checkpoint, or both')
flags.DEFINE_bool('multiprocess', False, 'call jax.distributed.initialize()')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (multiprocess)')
flags.DEFINE_integer('num_processes', None, 'number of processes (multiprocess)')
flags.DEFINE_integer('process_id', None, 'this process (multiprocess)')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  import jax  # pylint: disable=g-import-not-at-top
  if FLAGS.multiprocess:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id)
  from tps_jax import reporting, train, workdir as wd  # pylint: disable=g-import-not-at-top
  reporting.setup_logging(quiet=jax.process_index() > 0)
  logging.info('JAX %s: process %d of %d, %d devices (%s)', jax.__version__,
               jax.process_index(), jax.process_count(), jax.device_count(),
               jax.devices()[0].platform)
  try:
    summary = train.run_mode(FLAGS.config, FLAGS.workdir, FLAGS.mode)
  except (train.SetupError, train.RunError, FloatingPointError) as e:  # one line
    raise SystemExit(f'main.py: {e}') from None
  except KeyboardInterrupt:  # a second Ctrl-C, or one before the handler is installed
    logging.error('main.py: interrupted; nothing saved since the last checkpoint')
    raise SystemExit(130) from None
  name = wd.EVALUATE if FLAGS.mode == 'evaluate' else wd.METRICS
  logging.info(reporting.done_line(summary, wd.join(FLAGS.workdir, name)))
  if summary.get('stop_signal'):  # stopped early: 128 + signal (143 SIGTERM, 130 SIGINT)
    raise SystemExit(128 + summary['stop_signal'])


if __name__ == '__main__':
  apps.run(main, 'main.py')  # a bad flag is one line, as in every app
