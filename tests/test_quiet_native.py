"""What native libraries write to stderr while TensorFlow loads goes to the log, not to
the lab user's terminal."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from micro_app.core.quiet_native import native_stderr_to_log


def test_native_writes_to_fd2_go_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="micro_app"), native_stderr_to_log("lib"):
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\n")
    assert "lib: I0000 port.cc:153] oneDNN custom operations are on." in caplog.text


def test_a_python_error_inside_still_reaches_the_caller() -> None:
    with pytest.raises(ImportError, match="no such"), native_stderr_to_log("lib"):
        raise ImportError("no such module")


@pytest.mark.slow
def test_importing_tensorflow_through_the_app_prints_nothing() -> None:
    code = "import micro_app, tensorflow as tf; tf.config.list_physical_devices('GPU')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""


@pytest.mark.slow
def test_a_predictor_built_per_model_prints_no_retracing_warning() -> None:
    # set-up and teaching build a traced predictor for each model they load; TensorFlow's
    # "triggered tf.function retracing" advice is for the app's developers, not a lab user
    code = (
        "import numpy as np, micro_app\n"
        "from micro_app.training.architectures import build_model\n"
        "from micro_app.core.models.package import ModelCard\n"
        "from micro_app.training.pipeline import batch_predictor\n"
        "card = ModelCard(name='t', version='1', classes=('a', 'b'), input_size=(32, 32))\n"
        "m = build_model('basic_cnn', 3, input_size=(32, 32))\n"
        "for _ in range(7):\n"
        "    batch_predictor(m, card)(np.zeros((2, 32, 32, 3), np.uint8))\n"
        "print('ran')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ran\n"
    assert "retracing" not in done.stderr, done.stderr
