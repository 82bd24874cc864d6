"""The dashboard's actions: loading models, data and configs, auto-scale, Run, export.

:class:`Actions` is a mixin of :class:`app.dashboard.Dashboard` (it uses the widgets and
the runner the dashboard builds). Slow work runs in worker threads through the session's
runner; state changes from these ``async`` handlers go through ``pn.io.unlocked()``
because they redraw Bokeh models, which need the document lock.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import panel as pn
import param

from loihi_core.errors import LoihiStudioError

from . import exporting
from .data import DataError, bundle_for_graph, example_future, input_shape, load_model_bytes, read_npz
from .pipeline import calibrate as run_calibration, evaluate as run_evaluation


class Actions:
    """What the buttons, the file drop and the export menu do (mixed into the dashboard)."""

    async def _load_example(self) -> None:
        try:
            bundle = await asyncio.wrap_future(example_future(self.example_choice.value))
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays usable
            self.placeholder.object = f"<div style='padding:40px;color:#b00'>Cannot load the example: {exc}</div>"
            return
        with pn.io.unlocked():
            self.state.set_bundle(bundle)

    async def _on_example(self, event: Any) -> None:
        with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
            self.state.set_action_problem("model", None)
        await self._load_example()

    async def _on_autoscale(self, event: Any) -> None:
        st = self.state
        args = st.calibration_args()
        self._progress(0, 12, "auto-scale: measuring rates with the emulator…")

        def progress(iteration: int, rates: dict[str, float]) -> None:
            worst = max(rates.items(), key=lambda kv: abs(kv[1] / args[3] - 1))
            self._progress(iteration + 1, 12, f"iteration {iteration + 1}: furthest off "
                           f"{worst[0]} at {worst[1]:.0f} Hz (target {args[3]:.0f})")

        self.autoscale.disabled = True
        try:
            result = await self.runner.run_action(run_calibration, *args, progress=progress)
        except (LoihiStudioError, ValueError) as exc:
            with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
                st.set_action_problem("calibration", str(exc))
            return
        finally:
            self.autoscale.disabled = False
            self._progress(None)
        with pn.io.unlocked():
            st.accept_calibration(result)
        self._notify(f"Auto-scale {'converged' if result.converged else 'stopped'} after "
                     f"{len(result.history)} iterations")

    def _on_autoblocks(self, event: Any) -> None:
        self.state.auto_block_shapes()

    async def _on_run(self, event: Any) -> None:
        st = self.state
        n = min(st.n_images, len(st.bundle.images))
        self._progress(0, n, f"emulating {n} images…")

        def progress(done: int, total: int) -> None:
            self._progress(done, total, f"emulated {done} of {total} images")

        self.run_button.disabled = True
        try:
            evaluation = await self.runner.run_action(run_evaluation, st.bundle, st.config, n,
                                                      progress=progress)
        except LoihiStudioError as exc:
            with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
                st.set_action_problem("run", str(exc))
            return
        finally:
            self.run_button.disabled = False
            self._progress(None)
        with pn.io.unlocked():
            st.accept_evaluation(evaluation)

    def _progress(self, value: int | None, total: int = 100, text: str = "") -> None:
        if value is None:
            self.progress.clear()
        else:
            self.progress.update(int(value), int(total), text)

    async def _on_files(self, event: param.parameterized.Event) -> None:
        # FilePond sends each dropped file in its own event: one at a time, in order, so
        # that data dropped with its model is read after the model (and checked against it)
        async with self._files_lock:
            await self._handle_files(event.new or {})

    async def _handle_files(self, files: dict) -> None:
        new = {name: data for name, data in files.items() if (name, len(data)) not in self._seen_files}
        self._seen_files.update((name, len(data)) for name, data in new.items())
        order = sorted(new, key=lambda n: (0 if n.lower().endswith(".keras") else
                                           1 if n.lower().endswith(".npz") else 2))
        for name in order:
            data = new[name]
            if isinstance(data, str):
                data = data.encode("utf-8")
            lower = name.lower()
            if lower.endswith(".keras"):
                await self._load_model(name, data)
            elif lower.endswith(".npz"):
                await self._load_data(name, data)
            elif lower.endswith(".json"):
                with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
                    self.state.import_json(data, name)
            else:
                with pn.io.unlocked():
                    self.state.set_action_problem("model", f"{name}: drop a .keras model, an .npz data "
                                                  f"set or a tuned-config .json")

    async def _load_model(self, name: str, data: bytes) -> None:
        st = self.state
        with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
            st.set_action_problem("model", None)
        self.model_info.loading = True
        try:
            graph = await self.runner.run_action(load_model_bytes, data, name)
            old = st.bundle
            images = labels = None
            data_name = ""
            if old is not None and input_shape(graph) == tuple(old.images.shape[1:]):
                images, labels, data_name = old.images, old.labels, old.data_name
            bundle = await self.runner.run_action(bundle_for_graph, graph, name, images, labels, data_name)
        except (LoihiStudioError, DataError) as exc:
            with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
                st.set_action_problem("model", f"{name}: {exc}")
            return
        finally:
            self.model_info.loading = False
        with pn.io.unlocked():
            st.set_bundle(bundle)
        self._notify(f"Loaded {name}: {len(st.layers)} neuron layers")
        asyncio.get_running_loop().create_task(self._autoscale_new(bundle.graph))

    async def _autoscale_new(self, graph: Any) -> None:
        """Auto-scale a newly loaded model to the target rate, so that its first view shows
        activity (a fresh model starts at scale 1: often silent, or saturated).

        Runs once the files dropped with the model are read (its data may follow it) and
        the first computation has shown whether the model can run at all.
        """
        await asyncio.sleep(0.5)
        async with self._files_lock:
            pass
        while self.runner.computing:
            await asyncio.sleep(0.05)
        st = self.state
        if st.bundle is None or st.bundle.graph is not graph or st.blocked or st.calibration is not None:
            return
        if st.config.to_json() != st.base.to_json():  # the user has started tuning by hand
            return
        self._notify(f"Auto-scaling {st.bundle.name} to {st.target_rate:.0f} Hz (undo restores "
                     f"scale 1)", kind="info")
        await self._on_autoscale(None)

    async def _load_data(self, name: str, data: bytes) -> None:
        st = self.state
        try:
            images, labels = await self.runner.run_action(read_npz, data, name)
        except DataError as exc:
            with pn.io.unlocked():  # may redraw plots: Bokeh models need the lock
                st.set_action_problem("data", f"{name}: {exc}")
            return
        with pn.io.unlocked():
            if st.set_data(images, labels, name):
                self._notify(f"Loaded {len(st.bundle.images)} images from {name}")

    def _on_import(self, event: param.parameterized.Event) -> None:
        if event.new is None:
            return
        name = self.import_input.filename or "config.json"
        if self.state.import_json(event.new, name):
            self._notify(f"Imported {name}")

    def _on_export_format(self, event: param.parameterized.Event) -> None:
        if self.state.bundle is not None:
            self.download.filename = exporting.filename(exporting.BY_LABEL[event.new], self.state.bundle.name)
        # notes and errors belong to the format (and config) they were written for
        self.export_notes.visible = False
        self.state.set_action_problem("export", None)
        self._refresh_export()

    def _refresh_export(self) -> None:
        """Say before downloading that the config cannot run; disable the formats that
        need a config that maps (the JSON still saves it, to fix later)."""
        st = self.state
        fmt = exporting.BY_LABEL[self.export_format.value]
        blocked = st.bundle is not None and st.blocked
        text = ""
        if blocked:
            text = ("This config cannot run on the chip (see the messages"
                    + (" above)" if fmt.key == "json" else "): ")
                    + ("; the JSON saves it as it is, to fix later." if fmt.key == "json" else
                       f"{fmt.label} needs a config that maps. Fix it, or export the JSON."))
        self.export_warning.object = text
        disabled = blocked and fmt.key != "json"
        if self.download.disabled != disabled:
            self.download.param.update(
                disabled=disabled,
                description=f"{fmt.label} needs a config that runs on the chip" if disabled else None)

    def _export(self) -> io.BytesIO | None:
        st = self.state
        fmt = exporting.BY_LABEL[self.export_format.value]
        try:
            out = exporting.export_bytes(fmt.key, st.bundle.graph, st.config,
                                         st.bundle.images, st.bundle.labels)
        except (LoihiStudioError, RuntimeError) as exc:
            st.set_action_problem("export", f"{fmt.label}: {exc}")
            self.export_notes.visible = False
            return None
        st.set_action_problem("export", None)
        self.export_notes.object = "\n".join(f"- {n}" for n in out.notes)
        self.export_notes.visible = bool(out.notes)
        return io.BytesIO(out.data)

    def _on_config(self, event: param.parameterized.Event) -> None:
        self.export_notes.visible = False  # notes of an export of the previous config

    @staticmethod
    def _notify(message: str, kind: str = "success") -> None:
        if pn.state.notifications is not None:
            getattr(pn.state.notifications, kind)(message, duration=3000)
