"""micro_app: live white-blood-cell detection and classification on a microscope camera."""

import time as _time
import warnings as _warnings

__version__ = "0.1.0"
# when the app's code started loading: "launch to the first classified cell" counts from here
LAUNCHED = _time.perf_counter()

# Keras warns on every call that passes one tensor to a model whose input is named; the
# app always does, and a lab user would read the warning as a fault
_warnings.filterwarnings(
    "ignore", message=r"The structure of `inputs` doesn't match", category=UserWarning
)

from micro_app.core import quiet_native as _quiet_native  # noqa: E402

_quiet_native.install()
