r"""Does the host feed the accelerator? CPU time per SSv2 clip, per stage, host vs device.

Builds a small Something-Something V2 set in the release layout (VP9 webm, 240-pixel
short side, 12 fps, 3-6 s of moving texture) with ``tps_jax.apps.build
--config=configs/ssv2_tps.py`` (res256 JPEG frames, as the real build stores them), then
reads it with the project's own iterators and ``configs/ssv2_tps.py``'s recipe at 32x224
on one tf.data thread::

  .venv/bin/python benchmarks/input_pipeline_throughput.py \
      --out_json=docs/input_pipeline_throughput.json --out_md=docs/input_pipeline_throughput.md

Everything is process CPU time (``time.process_time``: all threads of this process), never
wall time, so the load other jobs put on shared cores does not enter. Reported:

* the train iterator with ``config.input.augment_on='host'`` (crop, flip, RandAugment 2
  ops m9, normalise, random erasing 0.25: float32 on the wire) and ``'device'`` (the host
  stops after the random resized crop: uint8), and each stage as the difference of
  cumulative variants (later stages switched off through config fields; read + parse and
  JPEG decoding as a direct tf.data map of the same reader and decoder);
* the 3-crop eval pipeline per video;
* ``tps_jax.augment`` (the device half) jitted under ``lax.map`` as the train step runs
  it, and the TPS-T train step (batch 1, 32x224), both on this CPU: the augmentation's
  share of the step;
* for H100 / A100 / TPU v5e / TPU v4: clips/s at 40% of peak and the host cores each
  mode needs to feed that, against the cores a host has per accelerator.

Before and after each timed window the process is left to go idle (prefetch buffers
full, workers blocked), so the window holds exactly the work of its clips.
"""
import datetime
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tps_jax import apps  # pylint: disable=g-import-not-at-top

_WORK_DIR = flags.DEFINE_string('work_dir', '/tmp/tps_jax_ssv2_throughput',
                                'fake release (manual/) and its build (data/); reused')
_TRAIN_VIDEOS = flags.DEFINE_integer('train_videos', 24, 'videos in the train split')
_EVAL_VIDEOS = flags.DEFINE_integer('eval_videos', 8, 'videos in the validation split')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 4, 'clips per train batch (and per '
                                   'device-augmentation call)')
_BATCHES = flags.DEFINE_integer('batches', 12, 'timed train batches per variant and round '
                                '(x batch_size: best a whole number of epochs)')
_WARMUP = flags.DEFINE_integer('warmup', 3, 'untimed batches first')
_EVAL_CLIPS = flags.DEFINE_integer('clips', 16, 'timed eval videos per round, rounded up to '
                                   'whole passes over the validation split')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'rounds over all variants; numbers are means')
_AUG_BATCHES = flags.DEFINE_integer('device_batches', 6, 'timed device-augmentation calls')
_STEP_REPEATS = flags.DEFINE_integer('train_step_repeats', 2,
                                     'timed TPS-T train steps (one untimed first)')
_SKIP_DEVICE = flags.DEFINE_bool('skip_device', False,
                                 'skip the JAX part (device augmentation, train step)')
_CACHE_DIR = flags.DEFINE_string('cache_dir', '/tmp/tps_jax_xla_cache',
                                 'XLA compilation cache ("" for none)')
_OUT_JSON = flags.DEFINE_string('out_json', 'docs/input_pipeline_throughput.json',
                                'JSON of every number')
_OUT_MD = flags.DEFINE_string('out_md', 'docs/input_pipeline_throughput.md',
                              'the Markdown tables')

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG_FILE = 'configs/ssv2_tps.py'

# A few real SSv2 templates, with the left/right pairs the flip rules act on.
_TEMPLATES = ('Approaching [something] with your camera',
              'Pushing [something] from left to right',
              'Pushing [something] from right to left',
              'Putting [something] on a surface',
              'Turning the camera left while filming [something]',
              'Turning the camera right while filming [something]',
              'Holding [something]',
              'Moving [something] up')
_HEIGHT, _WIDTH, _FPS = 240, 426, 12  # the release: 240 pixels high, 12 fps

# What the issue measured (CPU-ms per clip) and the targets.
_ISSUE_STAGE_MS = {'read + parse': 6, 'JPEG decode (32 frames)': 17,
                   'random resized crop': 12, 'train-iterator bookkeeping': None,
                   'normalise': 18, 'flip': 4,
                   'RandAugment': 75, 'random erasing': 24}
_TARGET_TRAIN_MS, _TARGET_EVAL_MS, _TARGET_AUG_SHARE = 35.0, 60.0, 5.0

# Peak dense bf16 FLOP/s (vendor data sheets: NVIDIA H100 SXM 989 TFLOP/s, A100 312;
# Cloud TPU system docs: v5e 197, v4 275) and host vCPUs per accelerator of the usual
# 8-accelerator (v4: 4-chip) VM: GCP a3-highgpu-8g 208 vCPUs / 8 (DGX H100: 224 threads
# / 8 = 28), a2-highgpu-8g 96 / 8 (DGX A100: 256 threads / 8 = 32), ct5lp-hightpu-8t
# 224 / 8, ct4p-hightpu-4t 240 / 4. Our CPU-ms are per vCPU (one hardware thread).
_ACCELERATORS = (('H100 SXM', 989e12, 26, 'a3-highgpu-8g: 208 vCPUs / 8 GPUs'),
                 ('A100', 312e12, 12, 'a2-highgpu-8g: 96 vCPUs / 8 GPUs'),
                 ('TPU v5e', 197e12, 28, 'ct5lp-hightpu-8t: 224 vCPUs / 8 chips'),
                 ('TPU v4', 275e12, 60, 'ct4p-hightpu-4t: 240 vCPUs / 4 chips'))
_UTILISATION = 0.4
_ISSUE_TRAIN_GFLOP = 437.0  # TPS-T train step per clip (the issue; XLA's count, 2/MAC)


def _texture(rng, height, width):
  """Smooth random colour texture, ~1/f^1.6 spectrum: frames JPEG-compress like SSv2's
  (~20-25 kB at 256 px, quality 90), unlike flat or white-noise frames."""
  fy = np.fft.fftfreq(height)[:, None] ** 2
  fx = np.fft.rfftfreq(width)[None, :] ** 2
  amplitude = 1.0 / np.maximum(fy + fx, 1.0 / max(height, width) ** 2) ** 0.8
  z = (rng.standard_normal((height, width // 2 + 1, 3)) +
       1j * rng.standard_normal((height, width // 2 + 1, 3)))
  z = z @ np.array([[1, 1, 1], [.3, 0, -.3], [0, .3, -.3]])  # mostly luminance
  img = np.fft.irfft2(amplitude[..., None] * z, s=(height, width), axes=(0, 1))
  return (img - img.mean()) / img.std()


def synthetic_clip(rng, seconds):
  """(T, 240, 426, 3) uint8: a panning background and a textured disc moving across."""
  n = int(round(seconds * _FPS))
  pan = 4 * n
  background = _texture(rng, _HEIGHT + 64, _WIDTH + pan)
  disc = 200 + 30 * _texture(rng, 96, 96)
  yy, xx = np.mgrid[:96, :96]
  inside = (yy - 48) ** 2 + (xx - 48) ** 2 < 44 ** 2
  base = rng.uniform(90, 160, 3)
  out = np.empty((n, _HEIGHT, _WIDTH, 3), np.uint8)
  for t in range(n):
    x0, y0 = (t * pan) // n, int(32 + 24 * np.sin(t / 9))
    frame = base + 40 * background[y0:y0 + _HEIGHT, x0:x0 + _WIDTH]
    ox, oy = int(20 + (_WIDTH - 140) * t / n), int(70 + 40 * np.cos(t / 6))
    frame[oy:oy + 96, ox:ox + 96][inside] = disc[inside]
    frame += rng.normal(0, 1.5, frame.shape)  # sensor noise
    out[t] = np.clip(frame, 0, 255)
  return out


def write_release(manual_dir, num_train, num_eval, seed=0):
  """The SSv2 download's layout: labels/{labels,train,validation}.json and
  20bn-something-something-v2/<id>.webm (VP9). Kept when complete."""
  from input_pipeline import video_io  # pylint: disable=g-import-not-at-top
  done = os.path.join(manual_dir, 'labels', 'validation.json')
  if os.path.exists(done):
    return
  rng = np.random.default_rng(seed)
  labels = {t.replace('[', '').replace(']', ''): str(i) for i, t in enumerate(_TEMPLATES)}
  splits = {'train': [], 'validation': []}
  for i in range(num_train + num_eval):
    template = _TEMPLATES[i % len(_TEMPLATES)]
    item = {'id': str(10000 + i), 'label': template.replace('[something]', 'a cup'),
            'template': template, 'placeholders': ['a cup']}
    splits['train' if i < num_train else 'validation'].append(item)
    path = os.path.join(manual_dir, '20bn-something-something-v2', f'{item["id"]}.webm')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    video_io.write_video(path, synthetic_clip(rng, rng.uniform(3, 6)), fps=_FPS,
                         codec='libvpx-vp9')
  os.makedirs(os.path.dirname(done), exist_ok=True)
  for name, content in (('labels', labels), ('train', splits['train']),
                        ('validation', splits['validation'])):  # validation.json last
    with open(os.path.join(manual_dir, 'labels', f'{name}.json'), 'w') as f:
      json.dump(content, f)


def build(manual_dir, data_dir):
  """The build app, as a user runs it; it reuses a build of the same inputs."""
  cmd = [sys.executable, '-m', 'tps_jax.apps.build', f'--config={_CONFIG_FILE}',
         f'--manual_dir={manual_dir}', f'--data_dir={data_dir}']
  out = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, check=False)
  if out.returncode:
    raise SystemExit(f'build failed ({" ".join(cmd)}):\n{out.stderr[-3000:]}')
  return out.stdout.strip().splitlines()[-1]


def ssv2_config(data_dir, batch_size, seed=0, **input_fields):
  """configs/ssv2_tps.py on the built set, one tf.data thread, `input_fields` changed."""
  from configs import ssv2_tps  # pylint: disable=g-import-not-at-top
  config = ssv2_tps.get_config()
  config.dataset.data_dir = data_dir
  config.input.num_threads = 1
  config.input.num_parallel_calls = 1
  config.input.update(input_fields)
  config.batch_size = batch_size
  config.eval_batch_size = 1
  config.seed = seed
  config.lock()
  return config


def _settle(limit_s=10.0, quiet_s=0.003):
  """Waits until this process stops using CPU (tf.data's buffers full, its threads
  blocked), so that a timed window starts and ends in the same state."""
  last, quiet = time.process_time(), 0
  deadline = time.monotonic() + limit_s
  while time.monotonic() < deadline and quiet < 2:  # twice: a starved thread is not idle
    time.sleep(0.15)
    now = time.process_time()
    quiet = quiet + 1 if now - last < quiet_s else 0
    last = now


def cpu_ms_per_item(iterator, per_batch, batches, warmup):
  """CPU-ms of this process per element over `batches` batches after `warmup`.

  Returns:
    (ms per element, the last batch).
  """
  for _ in range(warmup):
    batch = next(iterator)
  _settle()
  t0 = time.process_time()
  for _ in range(batches):
    batch = next(iterator)
  _settle()
  return 1e3 * (time.process_time() - t0) / (batches * per_batch), batch


def direct_stage_dataset(config, info, stage):
  """The train split read and parsed ('parse'), + JPEG-decoded ('decode'), + cropped
  ('crop'), with the train pipeline's own reader, parser, sampler, decoder and crop
  (``pipeline.preprocess_train``'s calls), in one plain map: no train-iterator bookkeeping."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from input_pipeline import build as build_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
  from input_pipeline import readers  # pylint: disable=g-import-not-at-top
  from input_pipeline import sampling  # pylint: disable=g-import-not-at-top
  from input_pipeline import transforms  # pylint: disable=g-import-not-at-top
  c = config.input
  source = readers.tfds_source(build_lib.prepared_builder(config.dataset),
                               config.dataset.splits.train, info.name)
  ranges = readers.process_ranges(source.shards, 0, 1)
  root = tf.constant([config.seed, 0], tf.int64)

  def one(i, record):
    element = source.parse(record)
    frames = element['frames']
    if stage == 'parse':  # touch the frames so that nothing is left unread
      return {'bytes': tf.reduce_sum(tf.strings.length(frames)), 'label': element['label']}
    s_sample, s_crop = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(root, i), 2))
    indices = sampling.sample_indices(tf.shape(frames)[0], c, seed=s_sample)[0]
    video = pipeline._decode_sampled(frames, indices)  # pylint: disable=protected-access
    if stage == 'decode':
      return {'corner': video[:, :1, :1], 'label': element['label']}  # no big batch copy
    shape = tf.shape(video)
    box = transforms.random_resized_crop_box(shape[1], shape[2], s_crop, c.crop_scale,
                                             c.crop_ratio)
    video = transforms.crop_and_resize(video, box, c.image_size)
    return {'video': tf.cast(tf.round(tf.clip_by_value(video, 0.0, 255.0)), tf.uint8),
            'label': element['label']}

  ds = readers.record_stream(ranges, cycle_length=c.cycle_length).repeat().enumerate()
  ds = ds.map(one, num_parallel_calls=1).batch(config.batch_size).prefetch(c.prefetch)
  options = tf.data.Options()
  options.threading.private_threadpool_size = 1
  options.threading.max_intra_op_parallelism = 1
  return ds.with_options(options).as_numpy_iterator()


def direct_eval_dataset(config, split):
  """``pipeline.preprocess_eval`` without its normalisation: the uint8 views (what the
  host would send if the eval step normalised on the device), one tf.data thread."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from input_pipeline import build as build_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
  from input_pipeline import readers  # pylint: disable=g-import-not-at-top
  from input_pipeline import sampling  # pylint: disable=g-import-not-at-top
  from input_pipeline import transforms  # pylint: disable=g-import-not-at-top
  c = config.input
  source = readers.tfds_source(build_lib.prepared_builder(config.dataset), split,
                               config.dataset.name)

  def one(record):
    element = source.parse(record)
    frames = element['frames']
    indices = sampling.sample_indices(tf.shape(frames)[0], c, num_clips=c.test_num_clips)
    video = pipeline._decode_sampled(frames, indices)  # pylint: disable=protected-access
    shape = tf.shape(video)
    boxes = transforms.eval_crop_boxes(shape[1], shape[2], c.test_num_crops,
                                       c.eval_image_size / c.min_resize)
    t = c.num_frames
    views = tf.stack([transforms.crop_and_resize(video[k * t:(k + 1) * t], box,
                                                 c.eval_image_size)
                      for k in range(c.test_num_clips) for box in boxes])
    return {'video': tf.cast(tf.round(tf.clip_by_value(views, 0.0, 255.0)), tf.uint8),
            'label': element['label']}

  ds = readers.record_stream(readers.process_ranges(source.shards, 0, 1)).repeat()
  ds = ds.map(one, num_parallel_calls=1).batch(1).prefetch(c.prefetch)
  options = tf.data.Options()
  options.threading.private_threadpool_size = 1
  options.threading.max_intra_op_parallelism = 1
  return ds.with_options(options).as_numpy_iterator()


# Cumulative train variants: (stage added, how it is measured, config.input fields).
_OFF = dict(flip_mode='off', randaugment_num_ops=0, random_erasing_prob=0.0)
TRAIN_VARIANTS = (
    ('read + parse', 'direct map: records read, parsed (JPEG strings)', 'parse'),
    ('JPEG decode (32 frames)', 'direct map: + frame sampling, 32 JPEGs decoded', 'decode'),
    ('random resized crop', 'direct map: + crop, resize to 224, uint8 batch', 'crop'),
    ('train-iterator bookkeeping', "the train iterator, augment_on='device' (same work "
     'as the row above, + enumerate, shuffle, bad-record guard)', dict(augment_on='device')),
    ('normalise', "augment_on='host', no flip / RandAugment / erasing: + float32 "
     'normalise and batch', dict(augment_on='host', **_OFF)),
    ('flip', '+ flip (no_flip_classes, p 0.5)',
     dict(augment_on='host', randaugment_num_ops=0, random_erasing_prob=0.0)),
    ('RandAugment', '+ RandAugment 2 ops m9', dict(augment_on='host', random_erasing_prob=0.0)),
    ('random erasing', "+ random erasing 0.25: the full host recipe",
     dict(augment_on='host')),
)


def time_pipelines(data_dir, rounds, batch_size, batches, warmup, eval_clips):
  """CPU-ms per clip of every train variant and per eval video; bytes on the wire."""
  from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
  base = ssv2_config(data_dir, batch_size)
  info = pipeline.get_dataset_info(base)
  times = {name: [] for name, _, _ in TRAIN_VARIANTS}
  times['eval (1 clip x 3 crops)'] = []
  times['eval, uint8 views'] = []
  wire, last = {}, {}
  for r in range(rounds):
    for name, _, how in TRAIN_VARIANTS:
      if isinstance(how, str):  # each round its own draws (RandAugment's ops vary most)
        config = ssv2_config(data_dir, batch_size, seed=r)
        iterator = direct_stage_dataset(config, info, how)
      else:
        config = ssv2_config(data_dir, batch_size, seed=r, **how)
        iterator = pipeline.create_train_iterator(config, info=info)
      ms, batch = cpu_ms_per_item(iterator, batch_size, batches, warmup)
      times[name].append(ms)
      last[name] = batch
      print(f'round {r + 1}/{rounds}: {name}: {ms:.1f} CPU-ms per clip', flush=True)
      del iterator
    # The eval stream refills in bursts (one per pass over the split, measured): whole
    # passes only.
    config = ssv2_config(data_dir, batch_size)
    split = config.dataset.splits.test
    size = info.num_examples[split]
    videos = -(-eval_clips // size) * size
    ds, _, _ = pipeline.eval_dataset(config, split, info=info)
    ms, batch = cpu_ms_per_item(ds.repeat().as_numpy_iterator(), 1, videos, size)
    times['eval (1 clip x 3 crops)'].append(ms)
    ms, batch_u8 = cpu_ms_per_item(direct_eval_dataset(config, split), 1, videos, size)
    times['eval, uint8 views'].append(ms)
    print(f'round {r + 1}/{rounds}: eval: {times["eval (1 clip x 3 crops)"][-1]:.1f} CPU-ms '
          f'per video, {ms:.1f} with uint8 views', flush=True)
  for key, name in (('host', 'random erasing'), ('device', 'train-iterator bookkeeping')):
    v = last[name]['video']
    wire[key] = dict(dtype=str(v.dtype), shape=list(v.shape[1:]),
                     bytes_per_clip=int(v[0].nbytes))
  for key, b in (('eval', batch), ('eval_uint8', batch_u8)):
    wire[key] = dict(dtype=str(b['video'].dtype), shape=list(b['video'].shape[1:]),
                     bytes_per_clip=int(b['video'][0].nbytes))
  return times, wire, info, last['train-iterator bookkeeping']


def data_facts(data_dir, info):
  """Frames per video and stored JPEG bytes per frame of the built train split."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from input_pipeline import build as build_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline import readers  # pylint: disable=g-import-not-at-top
  config = ssv2_config(data_dir, 1)
  builder = build_lib.prepared_builder(config.dataset)
  source = readers.tfds_source(builder, 'train', info.name)
  ds = readers.record_stream(readers.process_ranges(source.shards, 0, 1)).map(source.parse)
  frames, sizes, shape = [], [], None
  for element in ds:
    frames.append(int(element['frames'].shape[0]))
    sizes += [len(j) for j in element['frames'].numpy()]
    shape = shape or list(tf.io.decode_jpeg(element['frames'][0]).shape)
  return dict(train_videos=info.num_examples['train'],
              eval_videos=info.num_examples['validation'],
              builder_config=builder.builder_config.name, stored_frame_shape=shape,
              frames_per_video_mean=statistics.mean(frames),
              frames_per_video_range=[min(frames), max(frames)],
              jpeg_kb_per_frame_mean=statistics.mean(sizes) / 1e3)


def _process_cpu_s(fn):
  t0 = time.process_time()
  out = fn()
  return time.process_time() - t0, out


def time_device(config, info, crops, num_calls, step_repeats):
  """CPU-ms per clip of tps_jax.augment under lax.map and of the TPS-T train step.

  Args:
    config: the device-mode config (its `input` section drives the augmentation).
    info: the data set's info (flip rules).
    crops: a uint8 batch of the device-mode train iterator: {'video', 'label'}.
    num_calls: timed augmentation calls (fresh keys each).
    step_repeats: timed train steps.

  Returns:
    A dict; a part that cannot run says why under '<part>_skipped'.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  out = {'jax_version': jax.__version__, 'device': jax.devices()[0].device_kind}
  try:
    from tps_jax import augment  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    augment = None
    out['augment_skipped'] = f'tps_jax.augment cannot be imported ({e})'
  if augment is not None:
    spec = augment.spec_from_config(config.input, tuple(int(k) for k in info.flip_label_map),
                                    tuple(int(k) for k in info.no_flip_classes))
    fn = jax.jit(lambda keys, v, l: jax.lax.map(
        lambda a: augment.augment_clip(*a, spec), (keys, v, l)))
    video, label = jnp.asarray(crops['video']), jnp.asarray(crops['label'])
    n = video.shape[0]
    keys = lambda i: jax.random.split(jax.random.key(i), n)
    compile_s, result = _process_cpu_s(
        lambda: jax.block_until_ready(fn(keys(0), video, label)))
    per_call = []
    for i in range(1, num_calls + 1):
      k = keys(i)
      _settle()
      s, result = _process_cpu_s(lambda: jax.block_until_ready(fn(k, video, label)))  # pylint: disable=cell-var-from-loop
      per_call.append(1e3 * s / n)
    out.update(augment_ms_per_clip=statistics.mean(per_call), augment_ms_per_call=per_call,
               augment_clips_per_call=n, augment_first_call_cpu_s=compile_s,
               augment_output=[str(result[0].dtype), list(result[0].shape[1:]),
                               str(result[1].dtype)])
    print(f'device augmentation: {out["augment_ms_per_clip"]:.1f} CPU-ms per clip', flush=True)
  try:
    from tps_jax import profiling  # pylint: disable=g-import-not-at-top
    from configs import ssv2_tps  # pylint: disable=g-import-not-at-top
    model_config = ssv2_tps.get_config()
    model_config.lock()
    prof = profiling.Profiler(model_config, batch=1, frames=config.input.num_frames,
                              size=config.input.image_size,
                              num_classes=profiling.SSV2_CLASSES)
  except Exception as e:  # pylint: disable=broad-except
    out['train_step_skipped'] = f'the train step cannot be built ({type(e).__name__}: {e})'
    return out
  step = prof.calls()['train']
  first_s, _ = _process_cpu_s(lambda: jax.block_until_ready(step()))
  cpu, wall = [], []
  for _ in range(step_repeats):
    _settle()
    w0 = time.perf_counter()
    s, _ = _process_cpu_s(lambda: jax.block_until_ready(step()))
    wall.append(time.perf_counter() - w0)
    cpu.append(1e3 * s)
  out.update(train_step_ms_per_clip=statistics.mean(cpu), train_step_ms_per_step=cpu,
             train_step_wall_s=wall, train_step_first_call_cpu_s=first_s,
             train_gflop_per_clip=prof.stats['train_gflops'],
             train_compile_s=prof.stats['train_compile_s'])
  print(f'TPS-T train step: {out["train_step_ms_per_clip"]:.0f} CPU-ms per clip', flush=True)
  if 'augment_ms_per_clip' in out:
    out['augment_share_pct'] = 100 * out['augment_ms_per_clip'] / out['train_step_ms_per_clip']
  return out


def accelerator_rows(train_ms, gflop_per_clip, wire):
  """Clips/s at 40% of peak and the host vCPUs each mode needs for them."""
  rows = []
  for name, peak, vcpus, host in _ACCELERATORS:
    clips_s = _UTILISATION * peak / (gflop_per_clip * 1e9)
    row = dict(accelerator=name, peak_bf16_tflops=peak / 1e12, host_vcpus=vcpus, host=host,
               clips_per_s=clips_s)
    for mode in ('host', 'device'):
      need = clips_s * train_ms[mode] / 1e3
      row[f'{mode}_vcpus_needed'] = need
      row[f'{mode}_fed'] = need <= vcpus
      row[f'{mode}_wire_gb_s'] = clips_s * wire[mode]['bytes_per_clip'] / 1e9
    row['target_vcpus_needed'] = clips_s * _TARGET_TRAIN_MS / 1e3
    rows.append(row)
  return rows


def _cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _git(*args):
  out = subprocess.run(['git', *args], cwd=_REPO, capture_output=True, text=True, check=False)
  return out.stdout.strip()


def _mean(xs):
  return statistics.mean(xs)


def markdown(r):
  """The report: stages, host vs device, device share, accelerators."""
  s = r['stages_ms']
  m = r['machine']
  out = io.StringIO()
  p = lambda *a: print(*a, file=out)
  d = r['data']
  p('# Input-pipeline throughput: SSv2 recipe, host vs device augmentation\n')
  p(f'`{r["command"]}` on {m["cpu_model"]} ({m["cpu_count"]} vCPUs shared with other jobs; '
    f'tensorflow {m["tensorflow"]}, jax {m["jax"]}, commit {m["git_commit"]}'
    f'{" + local changes" if m["git_dirty"] else ""}, {m["date"]}).\n')
  p(f'Data: {d["train_videos"]} train + {d["eval_videos"]} validation videos written as the '
    f'SSv2 release (VP9 webm, {_WIDTH}x{_HEIGHT}, {_FPS} fps, 3-6 s of moving texture: '
    f'{d["frames_per_video_range"][0]}-{d["frames_per_video_range"][1]} frames), built with '
    f'`python -m tps_jax.apps.build --config={_CONFIG_FILE}` ({d["builder_config"]}: '
    f'{d["stored_frame_shape"][1]}x{d["stored_frame_shape"][0]} JPEG frames, '
    f'{d["jpeg_kb_per_frame_mean"]:.1f} kB each). Read with `configs/ssv2_tps.py`\'s recipe '
    f'at 32x224 on one tf.data thread (num_threads = num_parallel_calls = 1). All numbers '
    f'are CPU-ms of this process (every thread), not wall time; means over '
    f'{r["args"]["rounds"]} rounds (seeds 0, 1, ...) of {r["args"]["batches"]} batches of '
    f'{r["args"]["batch_size"]} clips after {r["args"]["warmup"]} untimed; eval over whole '
    f'passes of the validation split. Each timed window starts and ends with the process '
    f'idle (buffers full), so it holds exactly its clips\' work.\n')
  p('## Per stage (train clip)\n')
  p('| stage | measured as | cumulative CPU-ms / clip | stage CPU-ms | issue |')
  p('| --- | --- | ---: | ---: | ---: |')
  prev = 0.0
  for name, how, _ in TRAIN_VARIANTS:
    total = s[name]
    issue = _ISSUE_STAGE_MS[name]
    p(f'| {name} | {how} | {total:.1f} | {total - prev:+.1f} | '
      f'{"-" if issue is None else issue} |')
    prev = total
  p('\nStage = difference of consecutive cumulative rows (noise: about +-2 ms; compare the '
    'rounds below). "normalise" holds the float32 batch copy, 4x the uint8 one, less the '
    'uint8 rounding of the rows above; the issue had no bookkeeping row (its crop row '
    'holds it).\n')
  t = r['per_clip']
  p('## Train and eval, host vs device\n')
  p('| pipeline | CPU-ms / clip | clips/s per vCPU | target | meets | on the wire |')
  p('| --- | ---: | ---: | ---: | --- | --- |')
  for key, label, target in (
      ('train_host', "train, augment_on='host' (full recipe)", _TARGET_TRAIN_MS),
      ('train_device', "train, augment_on='device' (host: up to the crop)", _TARGET_TRAIN_MS),
      ('eval', 'eval, 1 clip x 3 crops, per video (`eval_dataset`)', _TARGET_EVAL_MS),
      ('eval_uint8', 'eval, the same views as uint8, normalised on the device (direct map)',
       _TARGET_EVAL_MS)):
    w = r['wire'][{'train_host': 'host', 'train_device': 'device'}.get(key, key)]
    shape = 'x'.join(str(k) for k in w['shape'])
    p(f'| {label} | {t[key]:.1f} | {1e3 / t[key]:.1f} | <= {target:.0f} | '
      f'{"yes" if t[key] <= target else "no"} | {w["dtype"]} {shape}: '
      f'{w["bytes_per_clip"] / 1e6:.1f} MB |')
  p(f'\nPer-round values: {json.dumps({k: [round(x, 1) for x in v] for k, v in r["rounds"].items()})}.\n')
  dev = r['device']
  p('## Device augmentation against the train step (same CPU)\n')
  if 'augment_ms_per_clip' in dev and 'train_step_ms_per_clip' in dev:
    p('| part | CPU-ms / clip |')
    p('| --- | ---: |')
    p(f'| `tps_jax.augment` (flip, RandAugment 2 ops m9, normalise, erasing 0.25) under '
      f'`jit(lax.map)`, {dev["augment_clips_per_call"]} clips per call, '
      f'{len(dev["augment_ms_per_call"])} calls | {dev["augment_ms_per_clip"]:.1f} |')
    p(f'| TPS-T train step (`tps_jax.steps.train_step`, batch 1, 32x224, float32; '
      f'{len(dev["train_step_ms_per_step"])} steps after one untimed) | '
      f'{dev["train_step_ms_per_clip"]:.0f} |')
    share = dev['augment_share_pct']
    p(f'| **augmentation / train step** | **{share:.2f}%** (target <= '
      f'{_TARGET_AUG_SHARE:.0f}%: {"met" if share <= _TARGET_AUG_SHARE else "missed"}) |')
    p('\nBoth on this CPU; on an accelerator both run there and the ratio is a proxy '
      '(the augmentation is memory-bound elementwise work, the step mostly matmuls).\n')
  elif 'skipped' in dev:
    p(f'Skipped ({dev["skipped"]}).\n')
  else:
    for part in ('augment', 'train_step'):
      if f'{part}_skipped' in dev:
        p(f'- {part.replace("_", " ")}: skipped: {dev[f"{part}_skipped"]}')
    if 'augment_ms_per_clip' in dev:
      p(f'- device augmentation: {dev["augment_ms_per_clip"]:.1f} CPU-ms per clip')
    if 'train_step_ms_per_clip' in dev:
      p(f'- TPS-T train step: {dev["train_step_ms_per_clip"]:.0f} CPU-ms per clip')
    p('')
  p('## Can the host feed the accelerator?\n')
  g = r['train_gflop_per_clip']
  p(f'Clips/s = {_UTILISATION:.0%} of peak dense bf16 / {g:.0f} GFLOP per TPS-T train clip '
    f'({r["train_gflop_source"]}); vCPUs needed = clips/s x CPU-s per train clip '
    f'(host {t["train_host"]:.1f} ms, device {t["train_device"]:.1f} ms, target '
    f'{_TARGET_TRAIN_MS:.0f} ms), against the vCPUs a cloud VM gives each accelerator.\n')
  p('| accelerator | peak TFLOP/s | clips/s at 40% | host vCPUs / acc. | vCPUs needed: host '
    'aug. | device aug. | at 35 ms | fed (host / device) | wire GB/s (float32 / uint8) |')
  p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |')
  for a in r['accelerators']:
    p(f'| {a["accelerator"]} | {a["peak_bf16_tflops"]:.0f} | {a["clips_per_s"]:.0f} | '
      f'{a["host_vcpus"]} ({a["host"]}) | {a["host_vcpus_needed"]:.0f} | '
      f'{a["device_vcpus_needed"]:.0f} | {a["target_vcpus_needed"]:.0f} | '
      f'{"yes" if a["host_fed"] else "no"} / {"yes" if a["device_fed"] else "no"} | '
      f'{a["host_wire_gb_s"]:.1f} / {a["device_wire_gb_s"]:.1f} |')
  fed = [a['accelerator'] for a in r['accelerators'] if a['device_fed']]
  unfed = [a for a in r['accelerators'] if not a['device_fed']]
  host_fed = [a['accelerator'] for a in r['accelerators'] if a['host_fed']]
  p('')
  p(f'With host augmentation {"only " + ", ".join(host_fed) if host_fed else "none"} '
    f'{"is" if len(host_fed) == 1 else "are"} fed. With device augmentation '
    f'{", ".join(fed) if fed else "none"} {"is" if len(fed) == 1 else "are"} fed'
    + (' (' + ', '.join(f'{a["accelerator"]} with {a["device_vcpus_needed"]:.0f} of '
                        f'{a["host_vcpus"]} vCPUs' for a in r['accelerators']
                        if a['device_fed']) + ')' if fed else '')
    + (('; ' + ', '.join(f'{a["accelerator"]} is not: it needs '
                         f'{a["device_vcpus_needed"]:.0f} of its {a["host_vcpus"]} vCPUs'
                         for a in unfed)) if unfed else '') + '.')
  dec = s['JPEG decode (32 frames)']
  p(f'\nWhat is left on the host in device mode is reading ({s["read + parse"]:.1f} ms), '
    f'decoding 32 JPEGs ({dec - s["read + parse"]:.1f} ms) and the crop/resize '
    f'({s["random resized crop"] - dec:.1f} ms). To close the rest: store smaller frames '
    '(res128, or a short side of 224-240, cuts decode and resize roughly with the pixel '
    'count; the crop area is at most the frame), decode the JPEGs on the GPU (nvJPEG via '
    'DALI, then the crop on the device too, leaving the host only the reads), or decode '
    'at reduced scale where the crop allows (libjpeg DCT scaling, `tf.io.decode_and_crop_jpeg` '
    'for the crop box only).')
  ok = t['eval_uint8'] <= _TARGET_EVAL_MS
  p(f'\nEval: {t["eval"]:.0f} ms per video, of which the uint8 views (decode once, 3 crops '
    f'resized) are {t["eval_uint8"]:.0f} ms; the rest is normalising 3 float32 views and '
    f'moving {r["wire"]["eval"]["bytes_per_clip"] / 1e6:.0f} MB. Sending the uint8 views and '
    f'normalising in the eval step (as the train step does in device mode) '
    f'{"meets" if ok else "still misses"} the {_TARGET_EVAL_MS:.0f} ms target.')
  return out.getvalue()


def main(argv):
  del argv
  work = _WORK_DIR.value
  manual, data = os.path.join(work, 'manual'), os.path.join(work, 'data')
  if (_BATCHES.value * _BATCH_SIZE.value) % _TRAIN_VIDEOS.value:
    print(f'note: {_BATCHES.value} x {_BATCH_SIZE.value} clips is not a whole number of '
          f'epochs of {_TRAIN_VIDEOS.value}: per-epoch work may enter unevenly')
  t0 = time.perf_counter()
  write_release(manual, _TRAIN_VIDEOS.value, _EVAL_VIDEOS.value)
  build_line = build(manual, data)
  print(f'data ready in {time.perf_counter() - t0:.0f} s: {build_line}', flush=True)

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  times, wire, info, crops = time_pipelines(data, _ROUNDS.value, _BATCH_SIZE.value,
                                            _BATCHES.value, _WARMUP.value, _EVAL_CLIPS.value)
  stages = {k: _mean(v) for k, v in times.items()}
  per_clip = dict(train_host=stages['random erasing'],
                  train_device=stages['train-iterator bookkeeping'],
                  eval=stages['eval (1 clip x 3 crops)'], eval_uint8=stages['eval, uint8 views'])

  device = {'skipped': '--skip_device'}
  if not _SKIP_DEVICE.value:
    if _CACHE_DIR.value:
      from tps_jax import profiling  # pylint: disable=g-import-not-at-top
      profiling.enable_compilation_cache(_CACHE_DIR.value)
    device = time_device(ssv2_config(data, _BATCH_SIZE.value, augment_on='device'), info,
                         crops, _AUG_BATCHES.value, _STEP_REPEATS.value)
  gflop = device.get('train_gflop_per_clip')
  source = 'XLA cost analysis of the train step compiled here'
  if gflop is None:
    gflop, source = _ISSUE_TRAIN_GFLOP, "the issue's figure (train step not compiled here)"

  import jax  # pylint: disable=g-import-not-at-top
  report = dict(
      command=' '.join(['python benchmarks/input_pipeline_throughput.py', *sys.argv[1:]]),
      machine=dict(cpu_model=_cpu_model(), cpu_count=os.cpu_count(),
                   python=platform.python_version(), tensorflow=tf.__version__,
                   jax=jax.__version__, git_commit=_git('rev-parse', '--short', 'HEAD'),
                   git_dirty=bool(_git('status', '--porcelain', '--untracked-files=no')),
                   date=datetime.date.today().isoformat()),
      args=dict(train_videos=_TRAIN_VIDEOS.value, eval_videos=_EVAL_VIDEOS.value,
                batch_size=_BATCH_SIZE.value, batches=_BATCHES.value, warmup=_WARMUP.value,
                eval_clips=_EVAL_CLIPS.value, rounds=_ROUNDS.value, threads=1,
                config=_CONFIG_FILE, clip='32x224x224'),
      data=data_facts(data, info),
      stages_ms=stages, rounds=times, per_clip=per_clip, wire=wire,
      targets=dict(train_ms=_TARGET_TRAIN_MS, eval_ms=_TARGET_EVAL_MS,
                   device_aug_share_pct=_TARGET_AUG_SHARE, wire_dtype='uint8'),
      issue_stage_ms=_ISSUE_STAGE_MS, device=device,
      train_gflop_per_clip=gflop, train_gflop_source=source, utilisation=_UTILISATION,
      accelerators=accelerator_rows(
          dict(host=per_clip['train_host'], device=per_clip['train_device']), gflop, wire))
  text = markdown(report)
  print(text)
  with open(_OUT_JSON.value, 'w') as f:
    json.dump(report, f, indent=1)
  with open(_OUT_MD.value, 'w') as f:
    f.write(text)
  print(f'wrote {_OUT_JSON.value} and {_OUT_MD.value}')


if __name__ == '__main__':
  apps.run(main, 'benchmarks/input_pipeline_throughput.py')
