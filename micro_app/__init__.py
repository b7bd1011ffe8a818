"""micro_app: live white-blood-cell detection and classification on a microscope camera."""

__version__ = "0.1.0"
