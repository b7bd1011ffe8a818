"""micro_app: live white-blood-cell detection and classification on a microscope camera."""

import time as _time

__version__ = "0.1.0"
# when the app's code started loading: "launch to the first classified cell" counts from here
LAUNCHED = _time.perf_counter()
