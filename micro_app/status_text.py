"""The words a user reads about a live run: one status line for the terminal (``micro-app
live``) and the window's status bar. The core hands out values (``SessionStatus``); the
wording lives here, outside it, shared by both front ends."""

from __future__ import annotations

from micro_app.core.session.state import ModelState, SessionStatus

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


def status_line(status: SessionStatus, display_fps: float | None = None, not_shown: int = 0) -> str:
    """One line for a terminal (camera fps, frames classified) or a window's status bar
    (display fps, and ``not_shown``: camera frames the window never drew). The model
    classifying the newest frame and skipping the others is by design, not a loss."""
    st = status
    res = f"{st.resolution[0]}x{st.resolution[1]}" if st.resolution else "no frame yet"
    if display_fps is None:
        rate = f"camera {st.camera_fps:.1f} fps"
        seen = f"classified {st.classified} of {st.frames} frames"
    else:
        rate = f"display {display_fps:.1f} fps"
        seen = f"dropped {not_shown}"
    state = st.state.value if not st.reason else f"{st.state.value}: {st.reason}"
    return (
        f"{st.source} ({state}) | {res} | {rate} | "
        f"inference {st.inference_fps:.1f} fps | latency {st.latency_ms:.0f} ms | "
        f"{seen} | {model_text(st)} | {st.device}"
    )
