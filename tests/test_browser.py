"""End-to-end browser tests of the visualisers.

* JupyterLab: a JupyterLab server (127.0.0.1, free port, no token, the project's
  ``python3`` kernel) serves a temporary copy of ``notebooks/05_visualizers.ipynb`` with
  small parameters; headless Chromium (Debian's ``/usr/bin/chromium``, driven by
  Playwright) opens it, runs all cells, moves the interpolation explorer's ``t`` slider and
  the slice viewer's ``slice`` slider, and checks from screenshots that the figure changed,
  and that no error output, console error or page error appeared.
* Voila: ``voila --progressive_rendering=True`` serves another copy as a dashboard; the
  same checks, plus: no code cell is shown.

Each test has its own notebook copy and ``out_dir`` (phantom data, quick student).

Screenshots, server logs, console logs and timings are kept in ``runs/test-browser/``
(``INTERP4D_BROWSER_RUN_DIR`` to choose another folder). ``INTERP4D_BROWSER_NOTEBOOK``
points the tests at another notebook (development only).

The tests skip, with the reason, only when Chromium cannot be had (not installed at
/usr/bin/chromium and not installable with apt by scripts/setup_browser.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from _browser_utils import (
    JS_ERROR_OUTPUTS,
    REPO_ROOT,
    PageWatch,
    Server,
    assert_shows_figure,
    chromium_unavailable_reason,
    chromium_version,
    free_port,
    jupyter_env,
    launch_browser,
    mark_tool,
    move_slider,
    output_locator,
    png_difference,
    png_stats,
    prepare_notebook,
    raise_on_error_output,
    slider_readout,
    wait_image_change,
    wait_images,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(420)]

NOTEBOOK = Path(os.environ.get("INTERP4D_BROWSER_NOTEBOOK", REPO_ROOT / "notebooks" / "05_visualizers.ipynb")).resolve()
RUN_DIR = Path(os.environ.get("INTERP4D_BROWSER_RUN_DIR", REPO_ROOT / "runs" / "test-browser")).resolve()
NB_NAME = "05_visualizers.ipynb"
BIN = Path(sys.executable).parent

#: how long the notebook may take to run all cells in the browser (small parameters)
RUN_ALL_TIMEOUT = 240
#: the sliders moved: (label, tag, presses, prefer: other controls of the same tool)
SLIDERS = [("t", "explorer", 3, ()), ("slice", "slice-viewer", 2, ("frame", "window", "level"))]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def chromium():
    reason = chromium_unavailable_reason(install=True)
    if reason:
        pytest.skip(reason)
    return chromium_version()


@pytest.fixture(scope="module")
def run_dir():
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    return RUN_DIR


def _notebook_params(nb_path: Path, out_dir: Path) -> dict:
    """The tutorial's smoke parameters (tiny volumes, few steps) that the notebook's
    ``parameters`` cell declares, and ``out_dir`` in the run folder."""
    import nbformat

    from interp4d_lite.tutorial import SMOKE_PARAMS

    nb = nbformat.read(str(nb_path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))
    declared = set(re.findall(r"^(\w+)\s*=", cell.source, flags=re.M))
    params = {k: v for k, v in SMOKE_PARAMS.items() if k in declared}
    if "out_dir" in declared:
        params["out_dir"] = str(out_dir)
    if "device" in declared:
        params["device"] = "cpu"
    return params


def _work_dir(run_dir: Path, name: str) -> Path:
    """``run_dir/<name>/work``: a parameterised, output-free copy of the notebook (the
    server's root). Each test has its own copy and ``out_dir`` (data, checkpoint), so it
    never depends on what another test left behind."""
    assert NOTEBOOK.exists(), f"the notebook to test is missing: {NOTEBOOK}"
    # the servers' root and the notebook's out_dir live in a temporary folder outside the
    # repository (Voila's progressive rendering stalled, websocket ping timeout, when they
    # were under runs/test-browser/; cause not found); screenshots and logs stay in run_dir
    base = Path(tempfile.mkdtemp(prefix=f"interp4d-browser-{name}-"))
    work = base / "work"
    params = _notebook_params(NOTEBOOK, base / "notebook_out")
    prepare_notebook(NOTEBOOK, work / NB_NAME, params)
    (run_dir / name).mkdir(parents=True, exist_ok=True)
    (run_dir / name / "parameters.json").write_text(json.dumps(params, indent=2))
    return work


@pytest.fixture(scope="module")
def browser(chromium, run_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _server(name, cmd, run_dir, work_dir):
    port = free_port()
    cmd = [c.replace("{work}", str(work_dir)) for c in cmd]
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    env = jupyter_env(run_dir / name / "home")
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return Server(name, cmd, port, work_dir, run_dir / name / "server.log", env)


@pytest.fixture
def lab_server(run_dir):
    work_dir = _work_dir(run_dir, "jupyterlab")
    server = _server(
        "jupyterlab",
        [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            "--ServerApp.root_dir={work}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--KernelSpecManager.ensure_native_kernel=False",
            "--LabApp.extension_manager=readonly",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        run_dir,
        work_dir,
    )
    server.start()
    try:
        server.wait_http("/api/status", timeout=120)
        yield server
    finally:
        server.stop()
        shutil.rmtree(work_dir.parent, ignore_errors=True)


@pytest.fixture
def voila_server(run_dir):
    work_dir = _work_dir(run_dir, "voila")
    server = _server(
        "voila",
        [
            str(BIN / "voila"),
            "{work}/" + NB_NAME,
            "--no-browser",
            "--port={port}",
            "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0",
            "--show_tracebacks=True",
            "--strip_sources=True",
            # progressive rendering: the page runs the cells over the kernel websocket. In the
            # default (server-side) mode Voila 0.5.13 can get stuck at "Executing N of 17"
            # (voila-dashboards/voila#1428, widgets with Output), progressive mode does not;
            # the README's dashboard command uses the same flag
            "--progressive_rendering=True",
            # no server-side websocket pings: with tornado 6.5 Voila 0.5's kernel websocket
            # closed itself after 90 s ("WebSocket ping timeout after 90001 ms", then a page
            # stuck mid-run) whenever the notebook took longer than that on a loaded CPU
            # (cf. voila-dashboards/voila#1540); the README's dashboard command does the same
            '--Voila.tornado_settings={"ws_ping_interval": 0}',
        ],
        run_dir,
        work_dir,
    )
    server.start()
    try:
        server.wait_http("/voila/static/voila.js", timeout=120)  # static: starts no kernel
        yield server
    finally:
        server.stop()
        shutil.rmtree(work_dir.parent, ignore_errors=True)


# --------------------------------------------------------------------------- shared steps
class Recorder:
    """Screenshots and timings of one test, in ``run_dir/<name>/``."""

    def __init__(self, run_dir: Path, name: str):
        self.dir = run_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        self.timings: dict[str, float] = {}
        self.notes: dict[str, object] = {}
        self.n = 0

    def mark(self, step: str):
        self.timings[step] = round(time.monotonic() - self.t0, 1)

    def shot(self, target, name: str) -> bytes:
        self.n += 1
        png = target.screenshot()
        (self.dir / f"{self.n:02d}_{name}.png").write_bytes(png)
        return png

    def save(self, watch: PageWatch):
        watch.dump(self.dir / "console.json")
        (self.dir / "timings.json").write_text(
            json.dumps({"seconds": self.timings, **self.notes}, indent=2, default=str)
        )


def _check_errors(page, watch: PageWatch, where: str):
    shown = page.evaluate(JS_ERROR_OUTPUTS)
    assert not shown, f"{where}: error output shown in the page:\n" + "\n---\n".join(shown)
    problems = watch.problems()
    assert not problems, f"{where}: browser problems:\n" + "\n".join(problems)


def _move_and_compare(page, rec: Recorder, watch: PageWatch, label: str, tag: str, presses: int, prefer=()):
    """Move a tool's slider; the displayed figure must change (pixels) and show a figure."""
    n_tools = mark_tool(page, label, tag, prefer=prefer)
    fp_before = wait_images(page, tag, timeout=60)
    value_before = slider_readout(page, tag)
    before = rec.shot(output_locator(page, tag), f"{tag}_before_{label}={value_before}")
    assert_shows_figure(before, f"{tag} before")
    # one key press at a time, each waited for: one value change -> one redraw, so the last
    # figure is the one of the last value (several quick presses queue several redraws)
    start, fp_after, values = time.monotonic(), fp_before, [value_before]
    for _ in range(presses):
        move_slider(page, tag, 1)
        fp_after = wait_image_change(page, tag, fp_after, timeout=90)
        values.append(slider_readout(page, tag))
    waited = (time.monotonic() - start) / presses
    value_after = slider_readout(page, tag)
    after = rec.shot(output_locator(page, tag), f"{tag}_after_{label}={value_after}")
    assert value_after != value_before, f"{tag}: slider {label!r} did not move ({value_before} -> {value_after})"
    assert_shows_figure(after, f"{tag} after")
    diff = png_difference(before, after)
    rec.notes[f"{tag}:{label}"] = {
        "tools_with_this_slider": n_tools,
        "values": values,
        "redraw_s_per_press": round(waited, 2),
        "pixel_diff": diff,
        "before": png_stats(before),
        "after": png_stats(after),
        "fingerprint_changed": fp_after != fp_before,
    }
    assert not diff["bytes_equal"] and diff["changed_fraction"] > 0.002, (
        f"{tag}: the figure did not change after moving {label!r} {value_before} -> {value_after}: {diff}"
    )
    _check_errors(page, watch, f"after moving {label!r}")


@contextmanager
def _browser_session(browser, run_dir: Path, name: str, chromium: str):
    """A fresh Chromium context and page for test ``name`` with its PageWatch and
    Recorder: yields ``(rec, watch, page)``; on failure a last screenshot, and in every
    case the console log and timings saved and the context closed."""
    rec = Recorder(run_dir, name)
    rec.notes["chromium"] = chromium
    rec.mark("server_up")
    context = launch_browser(browser, run_dir / name / "chromium-profile")
    watch = PageWatch()
    watch.attach_context(context)
    page = None
    try:
        page = context.pages[0] if context.pages else context.new_page()
        watch.attach(page)
        yield rec, watch, page
    except BaseException:
        if page is not None:
            rec.shot(page, "FAILED")
        raise
    finally:
        rec.save(watch)
        context.close()


def _move_sliders(page, rec: Recorder, watch: PageWatch):
    """Move every tool's slider (``SLIDERS``), then the last screenshot and error check."""
    for label, tag, presses, prefer in SLIDERS:
        _move_and_compare(page, rec, watch, label, tag, presses, prefer)
        rec.mark(f"moved_{label}")
    rec.shot(page, "end")
    _check_errors(page, watch, "at the end")


def _code_lines(nb_path: Path) -> list[str]:
    """Distinctive code lines of the notebook (not quoted in its markdown)."""
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    lines = {ln.strip() for c in nb.cells if c.cell_type == "code" for ln in c.source.splitlines()}
    return sorted(ln for ln in lines if len(ln) >= 20 and not ln.startswith("#") and ln not in markdown)


# --------------------------------------------------------------------------- tests
JS_LAB_STATE = r"""
() => {
  const app = window.jupyterapp;
  if (!app) return {ready: false, why: 'no window.jupyterapp'};
  const p = app.shell.currentWidget;
  if (!p || !p.content || !p.sessionContext) return {ready: false, why: 'no notebook panel'};
  const k = p.sessionContext.session && p.sessionContext.session.kernel;
  const cells = p.content.widgets.filter(c => c.model.type === 'code');
  return {ready: !!k, kernel: k ? k.status : null, name: p.context.path, cells: cells.length,
          executed: cells.filter(c => c.model.executionCount !== null).length,
          pending: cells.filter(c => c.promptNode && c.promptNode.textContent.includes('*')).length};
}
"""


def test_jupyterlab_visualizers_end_to_end(browser, lab_server, run_dir, chromium):
    with _browser_session(browser, run_dir, "jupyterlab", chromium) as (rec, watch, page):
        rec.notes["notebook"] = str(NOTEBOOK.relative_to(REPO_ROOT) if NOTEBOOK.is_relative_to(REPO_ROOT) else NOTEBOOK)
        page.goto(f"{lab_server.url}/lab/tree/{NB_NAME}?reset", wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function(
            "() => { const s = (" + JS_LAB_STATE + ")(); return s.ready && s.kernel === 'idle'; }",
            timeout=150_000,
            polling=500,
        )
        rec.mark("notebook_open_kernel_idle")
        rec.shot(page, "opened")

        page.evaluate(
            "() => { window.__runAll = 'running'; window.jupyterapp.commands.execute("
            "'notebook:run-all-cells').then(r => { window.__runAll = 'done'; }, "
            "e => { window.__runAll = 'error: ' + e; }); }"
        )
        deadline = time.monotonic() + RUN_ALL_TIMEOUT
        while True:
            state = page.evaluate(JS_LAB_STATE)
            shown = page.evaluate(JS_ERROR_OUTPUTS)
            if shown:
                rec.shot(page, "error")
                pytest.fail("error output while running all cells:\n" + "\n---\n".join(shown))
            if (
                state["cells"]
                and state["executed"] == state["cells"]
                and not state["pending"]
                and state["kernel"] == "idle"
            ):
                break
            if time.monotonic() > deadline:
                rec.shot(page, "timeout")
                pytest.fail(f"run all cells did not finish in {RUN_ALL_TIMEOUT} s: {state}\n{lab_server.log_tail()}")
            time.sleep(1)
        rec.mark("run_all_done")
        rec.notes["run_all"] = page.evaluate("() => window.__runAll")
        rec.shot(page, "ran_all")
        _check_errors(page, watch, "after run all")

        _move_sliders(page, rec, watch)


def test_voila_dashboard(browser, voila_server, run_dir, chromium):
    with _browser_session(browser, run_dir, "voila", chromium) as (rec, watch, page):
        # Voila executes the notebook while it streams the page: the document is complete
        # once every cell ran; an error output fails at once (after an error Voila 0.5 may
        # never finish the page)
        page.goto(voila_server.url + "/", wait_until="commit", timeout=RUN_ALL_TIMEOUT * 1000)
        deadline = time.monotonic() + RUN_ALL_TIMEOUT
        while page.evaluate("() => document.readyState") != "complete":
            raise_on_error_output(page, "while Voila executes the notebook")
            if time.monotonic() > deadline:
                pytest.fail(f"Voila did not finish the page in {RUN_ALL_TIMEOUT} s:\n{voila_server.log_tail()}")
            time.sleep(1)
        rec.mark("page_loaded")
        for label, tag, _, prefer in SLIDERS:
            mark_tool(page, label, tag, prefer=prefer, timeout=RUN_ALL_TIMEOUT)
            wait_images(page, tag, timeout=RUN_ALL_TIMEOUT)
        rec.mark("widgets_shown")
        rec.shot(page, "dashboard")
        _check_errors(page, watch, "dashboard loaded")
        # no code: no code-cell input areas or editors, and none of the notebook's code lines as text
        code = page.evaluate("""() => [...document.querySelectorAll(
              '.jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-InputPrompt, .jp-CodeMirrorEditor, .cm-editor, .CodeMirror')]
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height > 0).map(e => e.className)""")
        assert not code, f"Voila shows code input areas: {code}"
        body = page.inner_text("body")
        shown = [line for line in _code_lines(voila_server.cwd / NB_NAME) if line in body]
        assert not shown, f"Voila shows code of the notebook: {shown[:5]}"

        _move_sliders(page, rec, watch)
