#!/usr/bin/env bash
# The prepared GPU check of issue 6: one command on one H200, about 8 minutes.
#
# Two modes:
#
#   bash benchmarks/gpu_check.sh prepare PATH/cifar10   (here, with PyPI access)
#       Downloads the pure-Python wheels the GPU machine lacks into .whl/
#       (Keras and its small dependencies, for Python 3.12 x86-64) and packs
#       the CIFAR-10 image folder (train/<class>/*.jpg, test/<class>/*.jpg)
#       into .data/cifar10.tar.gz. Both folders are git-ignored.
#
#   bash benchmarks/gpu_check.sh            (there; carry .whl and .data)
#       Installs the wheels if Keras is missing (into /tmp/site, no network),
#       unpacks the images, then under KERAS_BACKEND=jax runs, each step with
#       its own time limit (a step that fails or runs out of time is logged
#       and the next one runs):
#         1. benchmarks.input_pipeline: the model's training images/s at batch
#            128 (target: simple_cnn >= 50,000 images/s), the decode pass, and
#            the tf.data pipeline where TensorFlow is installed;
#         2. benchmarks.schedule_overhead and benchmarks.runner_overhead, which
#            are TensorFlow programs: run only where TensorFlow is installed,
#            otherwise "skipped" in the results;
#         3. simple_cnn on the whole of CIFAR-10 (benchmarks.time_to_accuracy,
#            SIMPLE_EPOCHS epochs, time to TARGET_ACCURACY), twice: with the
#            runner's defaults, then with --steps_per_execution=32
#            --backup_every=SIMPLE_EPOCHS (callbacks wait for the device once
#            per 32 steps, one backup per run): the epoch times say what the
#            per-step callbacks and the per-epoch backup cost on a GPU;
#         4. ResNet-20 on He et al.'s recipe (lr 0.1, momentum 0.9, weight
#            decay 1e-4, batch 128, x0.1 at 32k and 48k of 64k steps, i.e. at
#            epochs 82 and 123 of 164 at 391 steps per epoch) for as long as
#            RESNET_SECONDS allows; the schedule is the full recipe's, cut off.
#       Writes $OUT/results.md (the figures), $OUT/gpu_check.log (everything
#       printed) and $OUT/runs.tar.gz (config, history, summary of each run).
#
# Steps 3 and 4 call `python -m experiments.run` with KERAS_BACKEND=jax: they
# need the runner's TensorFlow-free path (issue 6, "GPU readiness": images in
# memory, augmentation as Keras layers, metrics to CSV). Without it they fail,
# and results.md says so with the runner's own error. A rehearsal on a CPU:
# `OUT=/tmp/o DATA=/tmp/d PYTHON=python JAX_PLATFORMS=cpu SIMPLE_EPOCHS=1
# RESNET_SECONDS=30 bash benchmarks/gpu_check.sh`, with /tmp/d/cifar10 a small
# image folder (and TensorFlow hidden by a stub package on PYTHONPATH, to take
# the GPU machine's path: a tensorflow/__init__.py that raises
# `ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")`).
#
# The device tool: run `bash benchmarks/gpu_check.sh` with carry [".whl", ".data"]
# and timeout_s 600. The steps' limits add up to 460 s without TensorFlow (595 s with
# it), plus about a minute of set-up: about the 8 minutes of the issue.

set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
DATA=${DATA:-/tmp/gpu_check_data}
SIMPLE_EPOCHS=${SIMPLE_EPOCHS:-10}
TARGET_ACCURACY=${TARGET_ACCURACY:-0.80}
RESNET_SECONDS=${RESNET_SECONDS:-160}
FAST_FLAGS="--steps_per_execution=32 --backup_every=$SIMPLE_EPOCHS"
# Wheels for the GPU machine's Python 3.12; keep one version of each.
WHEELS="keras==3.15.1 namex==0.1.0 optree==0.20.0"

prepare() {
    local folder=${1:?usage: gpu_check.sh prepare PATH/cifar10}
    [[ -d $folder/train && -d $folder/test ]] || { echo "error: $folder has no train/ and test/" >&2; exit 2; }
    mkdir -p .whl .data
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl $WHEELS || exit 1
    tar -czf .data/cifar10.tar.gz -C "$(dirname "$folder")" "$(basename "$folder")" || exit 1
    ls -l .whl .data
    echo "carry .whl and .data (together $(du -sh --apparent-size -c .whl .data | tail -1 | cut -f1))"
}

if [[ ${1:-} == prepare ]]; then
    prepare "${2:-}"
    exit 0
fi

mkdir -p "$OUT" "$DATA"
LOG=$OUT/gpu_check.log
RESULTS=$OUT/results.md
RUNS=$DATA/runs
: >"$LOG"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

note() { echo "$*" | tee -a "$RESULTS" "$LOG"; }

# step NAME SECONDS COMMAND...: runs COMMAND under a time limit, output to the
# log; its stdout (the benchmark's Markdown) also goes to results.md.
step() {
    local name=$1 seconds=$2 start status
    shift 2
    echo "=== $name (limit ${seconds}s): $*" >>"$LOG"
    start=$(date +%s)
    timeout --kill-after=10 "$seconds" "$@" >"$DATA/$name.out" 2>>"$LOG"
    status=$?
    cat "$DATA/$name.out" >>"$LOG"
    {
        echo
        echo "## $name"
        echo
        cat "$DATA/$name.out"
        case $status in
            0) ;;
            124|137) echo "**$name: stopped at its ${seconds} s limit** (exit $status)" ;;
            *) echo "**$name: exit status $status**; the log's last lines:"
               echo '```'; tail -n 5 "$LOG"; echo '```' ;;
        esac
        echo "($(( $(date +%s) - start )) s)"
    } >>"$RESULTS"
    return $status
}

{
    echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
    echo "machine: ${gpu:-no GPU seen by nvidia-smi};"\
         "$(nproc) CPU cores; $("$PYTHON" --version 2>&1); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} | tee "$RESULTS" >>"$LOG"

# Set-up: Keras from the carried wheels if missing; the images.
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 || note "wheel install failed"
        export PYTHONPATH=$PYTHONPATH:/tmp/site
    else
        note "Keras is not installed and no .whl/ was carried (run: gpu_check.sh prepare PATH)"
    fi
fi
"$PYTHON" - >>"$RESULTS" 2>>"$LOG" <<'EOF'
import jax, keras
try:
    import tensorflow
    tensorflow = f"tensorflow {tensorflow.__version__}"
except ImportError:
    tensorflow = "no tensorflow"
print(f"keras {keras.__version__} on {keras.backend.backend()}, jax {jax.__version__}, "
      f"devices {jax.devices()}; {tensorflow}")
EOF
if [[ ! -d $DATA/cifar10/train ]]; then
    timeout 120 tar -xzf .data/cifar10.tar.gz -C "$DATA" >>"$LOG" 2>&1 ||
        note "could not unpack .data/cifar10.tar.gz (carry .data; run: gpu_check.sh prepare PATH)"
fi
IMAGES=$DATA/cifar10
if "$PYTHON" -c "import tensorflow" 2>/dev/null; then TF=1; else TF=0; fi

# 1. The model's images/s (and the pipeline's where TensorFlow is installed).
step input_pipeline 90 "$PYTHON" -m benchmarks.input_pipeline --image_folder="$IMAGES" \
    --model_steps=50 --repeats=5

# 2. The TensorFlow-only benchmarks.
if [[ $TF == 1 ]]; then
    step schedule_overhead 60 "$PYTHON" -m benchmarks.schedule_overhead --steps=50
    step runner_overhead 75 "$PYTHON" -m benchmarks.runner_overhead --image_folder="$IMAGES" \
        --train_images=10000 --val_images=2000 --repeats=3
else
    note ""
    note "schedule_overhead, runner_overhead: skipped (TensorFlow programs; TensorFlow is not installed)"
fi

# 3. simple_cnn, the whole of CIFAR-10 (needs the runner's JAX path): the runner's
#    defaults, then fewer waits for the device and one backup.
step simple_cnn 110 "$PYTHON" -m benchmarks.time_to_accuracy --image_folder="$IMAGES" \
    --train_subset=0 --epochs="$SIMPLE_EPOCHS" --target_accuracy="$TARGET_ACCURACY" \
    --keep_dir="$RUNS"
step simple_cnn_fewer_waits 100 "$PYTHON" -m benchmarks.time_to_accuracy --image_folder="$IMAGES" \
    --train_subset=0 --epochs="$SIMPLE_EPOCHS" --target_accuracy="$TARGET_ACCURACY" \
    --keep_dir="$RUNS/fewer_waits" --runner_flags="$FAST_FLAGS"

# 4. ResNet-20, He et al.'s recipe, for RESNET_SECONDS (needs the runner's JAX path).
step resnet20 "$RESNET_SECONDS" "$PYTHON" -m experiments.run --image_folder="$IMAGES" \
    --model=resnet20 --schedule=step --lr=0.1 --momentum=0.9 --weight_decay=1e-4 \
    --batch_size=128 --epochs=164 --milestones=82,123 --log_dir="$RUNS" \
    --run_name=resnet20_he2016 --overwrite

# What each training's history.csv holds (also when its step ran out of time).
"$PYTHON" - "$RUNS" "$FAST_FLAGS" >>"$RESULTS" 2>>"$LOG" <<'EOF'
import csv, json, os, statistics, sys
for name, label in (("time_to_accuracy", "simple_cnn"),
                    ("fewer_waits/time_to_accuracy", f"simple_cnn {sys.argv[2]}"),
                    ("resnet20_he2016", "resnet20")):
    run_dir = os.path.join(sys.argv[1], name)
    try:
        with open(os.path.join(run_dir, "history.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
    except OSError as error:
        print(f"\n{label}: no history ({error})")
        continue
    if not rows:
        print(f"\n{label}: no epoch completed")
        continue
    planned, train_size = config["flags"]["epochs"], config["derived"]["train_size"]
    seconds = [float(r["epoch_seconds"]) for r in rows]
    typical = statistics.median(seconds[1:] or seconds)
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    print(f"\n{label}: {len(rows)} of {planned} planned epochs completed; median epoch "
          f"{typical:.2f} s (training and validation), first epoch {seconds[0]:.1f} s; "
          f"{train_size / typical:,.0f} training images per second of epoch; val_accuracy last "
          f"{float(rows[-1]['val_accuracy']):.4f}, best {float(best['val_accuracy']):.4f} "
          f"(epoch {int(best['epoch']) + 1}); all {planned} epochs at that median: "
          f"{planned * typical / 60:.1f} min (a projection, not a measurement)")
EOF

tar -czf "$OUT/runs.tar.gz" -C "$DATA" --exclude=backup --exclude=tensorboard runs 2>>"$LOG"
note ""
note "done $(date -u '+%H:%M:%S UTC')"
