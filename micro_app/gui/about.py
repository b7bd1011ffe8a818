"""The About box's text: the app's version, the model in use and the data it was trained
on, with their licences (``resources/about.html``)."""

from __future__ import annotations

from micro_app import __version__
from micro_app.core.errors import MicroAppError
from micro_app.core.models.card import trained_on
from micro_app.core.session import ModelInfo
from micro_app.resources import resource


def about_html(info: ModelInfo) -> str:
    model = f"{info.name} {info.version} ({info.device})" if info.name else "none"
    credits = "no model"
    if info.name:
        credits = trained_on(info.training_data)
    try:
        text = resource("about.html").read_text(encoding="utf-8")
    except (OSError, MicroAppError) as exc:
        text = f"<h3>micro_app {{version}}</h3><p>{exc}</p>"
    return text.format(version=__version__, model=model, credits=credits)
