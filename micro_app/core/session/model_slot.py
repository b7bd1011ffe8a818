"""The model slot: the one ordered path for every change to the engine of a live run.

Every change (preprocessing, locating, threshold, calibrated scale, the source's own scale,
model folder, backend) is ``change(**fields)``: under one lock it updates the *wanted* spec,
in the order the calls came. Parameters reach the engine in use at once (from the next
frame), even while a load runs. A change of model folder or backend asks for a load on the
jobs thread; loads asked for while one is running merge (one pending load, newest wins).
When a load ends, the new engine is built from the spec wanted *then*, so a threshold or a
scale set during the load is kept. A load that fails keeps the model in use (and says why).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from micro_app.core.engine import Engine, EngineParams
from micro_app.core.locate import LocateParams
from micro_app.core.preprocess import PreprocessParams
from micro_app.core.session.state import ModelInfo, ModelState

log = logging.getLogger("micro_app")


@dataclass(frozen=True)
class EngineSpec:
    """What the live run's engine should be."""

    preprocess: PreprocessParams
    locate: LocateParams
    threshold: float | None  # None: the model card's
    calibrated_um_per_px: float | None  # the objective's calibrated scale
    source_um_per_px: float | None  # the source's own scale (the demo knows it)
    model_folder: str | None
    backend: str
    model_request: int = 0  # each explicit load asks again, even for the folder in use

    @property
    def um_per_px(self) -> float | None:
        """The calibrated scale, else the source's own, else None (estimated per field)."""
        return self.calibrated_um_per_px or self.source_um_per_px

    @property
    def params(self) -> EngineParams:
        return EngineParams(self.threshold, self.um_per_px)


class ModelSlot:
    def __init__(
        self,
        engine: Engine,
        *,
        backend: str,
        run_job: Callable[[Callable[[], None]], None],
        on_engine: Callable[[Engine], None],
        on_state: Callable[[], None],
        report: Callable[[str, BaseException], object],
        note: Callable[[str], None],
    ) -> None:
        """``run_job`` runs a load on the jobs thread; ``on_engine`` hears each engine put
        in use, ``on_state`` each change of the model's state; ``report`` is the relay."""
        clf = engine.classifier
        folder = str(clf.package.path) if clf is not None else None
        self._spec = EngineSpec(
            engine.preprocess,
            engine.locate,
            engine.params.threshold,
            engine.params.um_per_px,
            None,
            folder,
            backend,
        )
        self._engine = engine
        self._loaded = _target(self._spec)  # the model folder and backend in use
        self._state = ModelState.READY if clf is not None else ModelState.NONE
        self._message = ""
        self._pending = False
        self._lock = threading.Lock()
        self._run_job = run_job
        self._on_engine = on_engine
        self._on_state = on_state
        self._report = report
        self._note = note

    # -- reading ---------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        with self._lock:
            return self._engine

    @property
    def spec(self) -> EngineSpec:
        with self._lock:
            return self._spec

    def info(self) -> ModelInfo:
        with self._lock:
            engine, (folder, backend, _) = self._engine, self._loaded
            state, message = self._state, self._message
        return ModelInfo.of(engine, folder, backend, state, message)

    # -- the one path for changes --------------------------------------------------------------
    def change(self, *, reload: bool = False, **fields: object) -> None:
        """Apply ``fields`` of ``EngineSpec`` in call order (see the module's doc);
        ``reload``: load the model folder again even if it is the one in use."""
        load = installed = None
        with self._lock:
            if reload:
                fields["model_request"] = self._spec.model_request + 1
            spec = self._spec = replace(self._spec, **fields)  # type: ignore[arg-type]
            if spec.model_folder is None:  # no model: the backend is only remembered
                self._loaded = _target(spec)
            # the engine in use takes the parameters at once, even while a load runs
            installed = self._engine = _derived(self._engine, spec)
            if _target(spec) != self._loaded and not self._pending:
                self._pending, load = True, self._load
                self._state, self._message = ModelState.LOADING, ""
        if installed is not None:
            self._on_engine(installed)
        if load is not None:
            self._on_state()
            self._run_job(load)

    def _load(self) -> None:
        """On the jobs thread: load what is wanted until what was loaded is still wanted."""
        while True:
            with self._lock:
                spec = self._spec
            target = _target(spec)
            try:
                engine = _built(spec, self._note)
            except Exception as exc:  # any failure: one line, the model in use stays
                with self._lock:
                    if _target(self._spec) != target:
                        continue  # a newer model was asked for meanwhile: load that one
                    folder, backend, request = self._loaded
                    self._spec = replace(
                        self._spec, model_folder=folder, backend=backend, model_request=request
                    )
                    self._state = ModelState.FAILED
                    self._message = str(exc) or type(exc).__name__
                    self._pending = False
                self._report("model", exc)
                self._on_state()
                return
            with self._lock:
                wanted = self._spec
                if _target(wanted) != target:
                    continue  # newest wins: this one is dropped unused
                engine = self._engine = _derived(engine, wanted)
                self._loaded, self._state, self._pending = target, ModelState.READY, False
            self._on_engine(engine)
            self._on_state()
            return


def _target(spec: EngineSpec) -> tuple[str | None, str, int]:
    """What a load gives: the folder, where it runs, which request it answers."""
    return spec.model_folder, spec.backend, spec.model_request


def _derived(engine: Engine, spec: EngineSpec) -> Engine:
    if (engine.preprocess, engine.locate, engine.params) == (
        spec.preprocess,
        spec.locate,
        spec.params,
    ):
        return engine
    return engine.derive(preprocess=spec.preprocess, locate=spec.locate, params=spec.params)


def _built(spec: EngineSpec, note: Callable[[str], None]) -> Engine:
    from micro_app.core.models import load_package

    assert spec.model_folder is not None
    package = load_package(Path(spec.model_folder), keras=False)
    engine = Engine(
        package,
        spec.preprocess,
        spec.locate,
        spec.params,
        smooth_scale=True,
        backend=spec.backend,
        on_message=note,
    )
    if engine.classifier is not None:
        engine.classifier.warm_up()
    return engine
