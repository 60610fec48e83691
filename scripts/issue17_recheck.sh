#!/usr/bin/env bash
# Re-checks the CLI-reachable bullets of issue #17 against target/debug/yolo-engine with crafted
# inputs (8 GB address-space cap, 120 s per command). Prints one line per check:
#   <check> | rc=<exit> | panic=<yes/no> | <last output line>
# Usage: scripts/issue17_recheck.sh [workdir]   (run `cargo build -p yolo-cli --bin yolo-engine` first)
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
E="$REPO/target/debug/yolo-engine"
W=${1:-/tmp/issue17-recheck}
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1
export YOLO_CONFIG_DIR="$W/cfg"

check() { # name, command...
  local name=$1; shift
  local out rc
  out=$( (ulimit -v 8000000; timeout 120 "$@") 2>&1 ); rc=$?
  local last; last=$(printf '%s\n' "$out" | grep -v '^\s*$' | tail -1 | cut -c1-160)
  local panic=no; printf '%s' "$out" | grep -q "panicked" && panic=yes
  [ $rc -eq 124 ] && last="TIMEOUT (hang?) $last"
  [ $rc -gt 128 ] && last="SIGNAL $((rc-128)) $last"
  printf '%-34s | rc=%-3s | panic=%-3s | %s\n' "$name" "$rc" "$panic" "$last"
}

# A tiny 3-class yolov8n and a small synthetic dataset.
sed -e 's/nc: 80/nc: 3/' -e 's/n: \[0.33, 0.25, 1024\]/n: [0.33, 0.0625, 1024]/' \
  "$REPO/crates/ryolo/models/yolov8.yaml" > tiny-yolov8n.yaml
"$E" data synth out=data n=12 imgsz=64 > /dev/null 2>&1
M=model=tiny-yolov8n.yaml
T="train $M data=data/data.yaml imgsz=32 epochs=1 workers=0 plots=False exist_ok=True"

# Silent no-op / arguments.
check "train batch=1024"           $E $T batch=1024 project=$W/runs name=b1024
check "train batch=abc"            $E $T batch=abc
check "train epochs=1e30"          $E $T epochs=1e30
check "train cache=ram"            $E $T cache=ram project=$W/runs name=ram
check "train cache=disk"           $E $T cache=disk project=$W/runs name=disk
# data.yaml classes.
for v in "nc: -3" "nc: 1e12" "nc: 3.7" "names: []"; do
  sed -e '/^names:/,$d' data/data.yaml > bad.yaml
  case "$v" in names*) echo "$v" >> bad.yaml ;; *) printf '%s\nnames:\n  0: a\n  1: b\n  2: c\n' "$v" >> bad.yaml ;; esac
  check "data.yaml $v (train)"      $E train $M data=bad.yaml imgsz=32 epochs=1 workers=0
done
python3 -c "print('train: a\nval: a\nnames: ' + '['*100000)" > nest.yaml
check "data.yaml 100k nested ["    $E data check data=nest.yaml
# Images: a PNG header claiming 60000x60000, a truncated PNG, a FIFO image.
cp -r data bomb
python3 - <<'PY'
import struct, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 60000, 60000, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(b'\0' * 1000)) + chunk(b'IEND', b'')
open('bomb/images/train/train_00000.png', 'wb').write(png)
open('bomb/images/val/val_00000.png', 'wb').write(png)
src = open('data/images/val/val_00001.png', 'rb').read()
open('bomb/images/val/val_00001.png', 'wb').write(src[: len(src) // 2])
PY
sed -i "s#^path:.*##" bomb/data.yaml
check "60000^2 header: data check"  $E data check data=bomb/data.yaml
check "60000^2 header: train"       $E train $M data=bomb/data.yaml imgsz=32 epochs=1 workers=0 plots=False project=$W/runs name=bomb
check "60000^2 header: val"         $E val $M data=bomb/data.yaml imgsz=32 plots=False
rm -f data/images/val/fifo.png; mkfifo data/images/val/fifo.png
check "FIFO image: val"             $E val $M data=data/data.yaml imgsz=32 plots=False
check "FIFO image: predict"         $E predict $M source=data/images/val/fifo.png imgsz=32
rm -f data/images/val/fifo.png
# CLI sizes and tools.
check "predict imgsz=100000"       $E predict $M source=data/images/val/val_00000.png imgsz=100000
check "data synth imgsz=1000000"   $E data synth out=s2 imgsz=1000000
mkdir -p split/images split/labels; cp data/images/train/*.png split/images/; cp data/labels/train/*.txt split/labels/
check "data split weights=0.9,0.1,0.0" $E data split source=split weights=0.9,0.1,0.0
# Error messages naming their file.
printf 'a\xff\xfe.png\n' > list.txt; echo x > file.txt
check "garbage source list"        $E predict $M source=list.txt imgsz=32
check "project= under a file"      $E predict $M source=data/images/val/val_00000.png imgsz=32 project=$W/file.txt/sub
check "project= on /sys (read-only)" $E val $M data=data/data.yaml imgsz=32 project=/sys/x
# Checkpoints: stale temp files, resume without any `last`.
mkdir -p runs/k/weights; head -c 100000 /dev/urandom > runs/k/weights/last.tmp99999
check "resume, no last yet"         $E train resume=True model=$W/runs/k/weights/last.safetensors
check "train removes last.tmp<pid>" $E $T project=$W/runs name=k
ls runs/k/weights | grep -q tmp99999 && echo "  stale last.tmp99999 still there" || echo "  stale last.tmp99999 removed"
# ONNX: a truncated export of our own.
"$E" export model=tiny-yolov8n.yaml format=onnx imgsz=32 > /dev/null 2>&1
head -c 20000 tiny-yolov8n.onnx > cut.onnx
check "truncated .onnx"             $E predict model=cut.onnx source=data/images/val/val_00000.png
