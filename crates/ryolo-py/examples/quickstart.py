# %% [markdown]
# # ryolo quickstart (notebook-style: each `# %%` is a cell)
# The Ultralytics notebook workflow on the ryolo engine: make a small dataset, train, validate,
# predict on a file and on an OpenCV-style array, export ONNX and predict with it.
# Runs anywhere in a minute or two on a CPU; RYOLO_QUICKSTART_DIR / _EPOCHS / _IMGSZ change it.

# %%
import os
import tempfile

import numpy as np

from ryolo import YOLO, synth_dataset

work = os.environ.get("RYOLO_QUICKSTART_DIR") or tempfile.mkdtemp(prefix="ryolo-quickstart-")
epochs = int(os.environ.get("RYOLO_QUICKSTART_EPOCHS", "2"))
imgsz = int(os.environ.get("RYOLO_QUICKSTART_IMGSZ", "64"))
n_images = int(os.environ.get("RYOLO_QUICKSTART_N", "32"))
data = synth_dataset(os.path.join(work, "synth"), n=n_images, imgsz=imgsz, seed=0)
print("dataset:", data)

# %% A fresh YOLO11n (from its YAML) and a callback printing each epoch's metrics
model = YOLO("yolo11n.yaml")
events = []


def on_fit_epoch_end(trainer):
    events.append(("on_fit_epoch_end", trainer.epoch, dict(trainer.metrics)))
    print(f"epoch {trainer.epoch + 1}/{trainer.epochs}: mAP50-95 {trainer.metrics['metrics/mAP50-95(B)']:.4f}")


def on_train_end(trainer):
    events.append(("on_train_end", str(trainer.best)))


model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
model.add_callback("on_train_end", on_train_end)

# %% Train (the model becomes the run's best.pt)
train_metrics = model.train(
    data=data, epochs=epochs, imgsz=imgsz, batch=8, workers=0, plots=False,
    project=os.path.join(work, "runs"), name="train", exist_ok=True,
)
print(model.ckpt_path, train_metrics.results_dict if train_metrics else None)

# %% Validate
metrics = model.val(data=data, imgsz=imgsz, batch=8, plots=False)
print("mAP50-95:", metrics.box.map, "results_dict:", metrics.results_dict)

# %% Predict on a file and on a BGR array (as cv2.imread gives)
image = os.path.join(os.path.dirname(data), "images", "val", sorted(os.listdir(os.path.join(os.path.dirname(data), "images", "val")))[0])
results = model(image, imgsz=imgsz, conf=0.01)
r = results[0]
print(r.path, r.orig_shape, r.boxes.xyxy, r.boxes.conf, r.boxes.cls, r.speed)
bgr = r.orig_img  # HxWx3 uint8 BGR
results_array = model.predict(bgr, imgsz=imgsz, conf=0.01)
annotated = results_array[0].plot()  # HxWx3 uint8 BGR, like Ultralytics
print("annotated image:", annotated.shape, annotated.dtype)

# %% Export to ONNX and predict with the exported model
onnx_path = model.export(format="onnx", imgsz=imgsz)
onnx_model = YOLO(onnx_path)
results_onnx = onnx_model(image, imgsz=imgsz, conf=0.01)
print(onnx_path, results_onnx[0].boxes.xyxy)

# %% Stream over a folder (a generator of Results)
for res in model.predict(os.path.dirname(image), stream=True, imgsz=imgsz, verbose=False):
    print(res.path, len(res), res.to_json()[:80])
