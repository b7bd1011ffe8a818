"""Training across machines: two workers on 127.0.0.1 with ``TF_CONFIG`` train one model
with ``MultiWorkerMirroredStrategy`` (what ``micro-app train`` picks when ``TF_CONFIG`` is
set) and finish with the same weights. Opt-in (two TensorFlow processes, a minute or two):

    MICRO_APP_MULTIWORKER=1 QT_QPA_PLATFORM=offscreen .venv/bin/pytest tests/test_multiworker.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("MICRO_APP_MULTIWORKER") != "1",
        reason="opt-in: set MICRO_APP_MULTIWORKER=1 (starts two TensorFlow workers)",
    ),
]

WORKER = """
import json, os, sys, time
import numpy as np
t0 = time.perf_counter()
from micro_app.training.pipeline import choose_strategy, is_chief
from micro_app.training.architectures import build_model
import keras
keras.utils.set_random_seed(0)
strategy, name = choose_strategy()
rng = np.random.default_rng(0)
x = rng.random((256, 32, 32, 3)).astype("float32")
y = rng.integers(0, 3, 256)
with strategy.scope():
    model = build_model("live_cnn", 3, 32)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
ds = __import__("tensorflow").data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
hist = model.fit(ds, epochs=2, steps_per_epoch=4, verbose=0)
np.savez(sys.argv[1], *model.get_weights())
print(json.dumps({"strategy": name, "chief": is_chief(), "replicas": strategy.num_replicas_in_sync,
                  "loss": hist.history["loss"], "seconds": time.perf_counter() - t0}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_workers_train_one_model_and_end_with_the_same_weights(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    t0 = time.perf_counter()
    for i in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        env = dict(os.environ, TF_CONFIG=json.dumps(config), TF_CPP_MIN_LOG_LEVEL="2")
        out = tmp_path / f"weights{i}.npz"
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    wall = time.perf_counter() - t0
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 and "multi-worker" in r["strategy"] for r in results)
    with np.load(tmp_path / "weights0.npz") as a, np.load(tmp_path / "weights1.npz") as b:
        assert a.files == b.files
        for k in a.files:
            assert np.allclose(a[k], b[k], atol=1e-6), k
    print(f"two workers: {wall:.1f} s wall; losses {[r['loss'] for r in results]}")
