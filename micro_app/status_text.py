"""The words a user reads about a live run: one status line for the terminal (``micro-app
live``) and the window's status bar, and the differential as ``live`` and ``classify``
print it. The core hands out values (``SessionStatus``, ``CountStatus``); the wording lives
here, outside it, shared by the front ends."""

from __future__ import annotations

from micro_app.core.results import SHOWN
from micro_app.core.session.state import ModelState, SessionStatus
from micro_app.core.slide import CountStatus

MODEL_WORDS = {
    ModelState.NONE: "no model",
    ModelState.LOADING: "loading model…",
    ModelState.READY: "model ready",
    ModelState.FAILED: "model failed",
}


def model_text(status: SessionStatus) -> str:
    words = MODEL_WORDS[status.model_state]
    if status.model_state is ModelState.FAILED and status.model_message:
        words = f"model failed: {status.model_message}"
    if status.model_state is ModelState.READY and status.model:
        words = f"model {status.model}"
    return words


def status_line(status: SessionStatus, display_fps: float | None = None) -> str:
    """One line for a terminal or a window's status bar; both say how many of the camera's
    frames the model classified. The model takes the newest frame each time and lets the
    ones that came meanwhile go: by design, not a loss, so nothing is called "dropped".
    ``display_fps``: the window adds how fast it shows frames."""
    st = status
    res = f"{st.resolution[0]}x{st.resolution[1]}" if st.resolution else "no frame yet"
    rate = f"camera {st.camera_fps:.1f} fps"
    if display_fps is not None:
        rate += f" | shown {display_fps:.1f} fps"
    state = st.state.value if not st.reason else f"{st.state.value}: {st.reason}"
    return (
        f"{st.source} ({state}) | {res} | {rate} | "
        f"inference {st.inference_fps:.1f} fps | latency {st.latency_ms:.0f} ms | "
        f"classified {st.classified} of {st.frames} frames (the newest each time) | "
        f"{model_text(st)} | {st.device}"
    )


def differential_lines(
    status: CountStatus, classes: tuple[str, ...] = (), where: str = ""
) -> list[str]:
    """The differential as a small table: every model class (0 when none was counted),
    then any other label (unidentified, corrections), then the warnings, each once.
    Provisional cells are in no percentage (``CountStatus``): a row of them only shows
    none; ``where`` points to the model's set-up (``provisional_line``)."""
    rows = list(classes) + sorted(k for k in status.counts if k not in classes)
    aside = f", {status.n_provisional} provisional" if status.n_provisional else ""
    n = status.fields
    fields = f" in {n} image{'s' if n != 1 else ''}" if n else ""
    lines = [f"differential: {status.total} cells counted{fields}{aside} (target {status.target})"]
    for label in rows:
        n, p = status.counts.get(label, 0), status.provisional.get(label, 0)
        share = status.shown_share(label)
        pct = f"{share:5.1f} %" if share is not None else f"{'-':>5}  "
        note = f"  ({p} provisional)" if p else ""
        lines.append(f"  {SHOWN.get(label, label):<18}{n:>5}  {pct}{note}")
    extra = [status.provisional_line(where)]
    lines += [f"  warning: {w}" for w in [*status.warnings, *extra] if w]
    return lines
