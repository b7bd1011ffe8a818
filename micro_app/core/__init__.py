"""Headless core: sources, preprocessing, cell locating, models, inference, overlay, export.

Nothing under ``micro_app.core`` imports Qt; the GUI imports the core, never the reverse.
"""
