"""Helpers of the browser tests (tests/test_browser.py): Chromium, servers, notebook copies,
widget lookup by description label, screenshots and error collection.

Network policy: the servers listen on 127.0.0.1 only, and Chromium (Debian's
``/usr/bin/chromium``, never a Playwright download) is started with flags that keep it
off the network, resolves no host name but 127.0.0.1/localhost, and every request to
another address is aborted by a route and recorded (the tests fail on any).
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SETUP_BROWSER = REPO_ROOT / "scripts" / "setup_browser.sh"

#: Chromium flags: headless, no sandbox (root in containers), and off the network (no
#: background, component-update, sync or QUIC traffic; host names resolve to nothing
#: except localhost). ``--user-data-dir`` is a fresh temporary folder per launch
#: (``launch_persistent_context``).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


# --------------------------------------------------------------------------- Chromium
def chromium_unavailable_reason(install: bool = True) -> str | None:
    """``None`` when ``/usr/bin/chromium`` runs; otherwise (after trying
    ``scripts/setup_browser.sh``, which installs Debian's package with apt when it can)
    the reason it cannot be had."""
    if not _chromium_runs() and install and SETUP_BROWSER.exists():
        proc = subprocess.run(["bash", str(SETUP_BROWSER)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
        log = (proc.stdout + proc.stderr).strip().splitlines()
        if not _chromium_runs():
            return (
                f"Debian's chromium is not installed at {CHROMIUM} and could not be "
                f"installed by scripts/setup_browser.sh: {' | '.join(log[-3:]) or 'no output'}"
            )
    if not _chromium_runs():
        return f"Debian's chromium is not installed at {CHROMIUM} (run scripts/setup_browser.sh as root)"
    return None


def _chromium_runs() -> bool:
    if not os.access(CHROMIUM, os.X_OK):
        return False
    try:
        proc = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "chrom" in proc.stdout.lower()


def chromium_version() -> str:
    return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()


def launch_browser(playwright, user_data_dir: Path, viewport=(1400, 1000)):
    """A persistent Chromium context on a fresh user-data dir (Debian's binary)."""
    user_data_dir = Path(user_data_dir)
    if user_data_dir.exists():
        shutil.rmtree(user_data_dir)
    user_data_dir.mkdir(parents=True)
    return playwright.chromium.launch_persistent_context(
        user_data_dir=str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": viewport[0], "height": viewport[1]},
        device_scale_factor=1,
        service_workers="block",
        accept_downloads=False,
    )


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (via /proc), children first."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@dataclass
class Server:
    """A server subprocess in its own process group, logging to ``log_path``."""

    name: str
    cmd: list[str]
    port: int
    cwd: Path
    log_path: Path
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_http(self, path: str, timeout: float = 120.0):
        """Until ``GET path`` answers 200 (fails early, with the log, if the server exits)."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:  # not up yet
                last = e
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} did not answer {path} in {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self, grace: float = 15.0):
        """SIGTERM to the process group (the server shuts its kernels down), then SIGKILL
        to whatever of the group and of the server's descendants (kernels run in their own
        sessions) is left."""
        if self.proc is None:
            return
        pids = _descendants(self.proc.pid) if self.proc.poll() is None else []
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            time.sleep(1)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        self.proc = None


def jupyter_env(home: Path) -> dict:
    """Environment isolating the servers from the user's Jupyter config/state, with JupyterLab
    settings that keep it quiet and testable: all cells attached to the DOM (no windowing),
    no news or update checks."""
    settings = home / "lab-settings"
    for ext, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
    }.items():
        path = settings / (ext + ".jupyterlab-settings")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    for sub in ("config", "runtime", "workspaces", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", "")) / "bin") if os.environ.get("VIRTUAL_ENV") else None
    path = os.environ.get("PATH", "")
    return {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PATH": f"{venv_bin}:{path}" if venv_bin else path,
        "PYTHONUNBUFFERED": "1",
        "OMP_WAIT_POLICY": "PASSIVE",  # as the tutorial runner: no spinning OpenMP threads on a shared CPU
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "NO_PROXY": "127.0.0.1,localhost",
    }


# --------------------------------------------------------------------------- notebooks
def prepare_notebook(src: Path, dst: Path, params: dict, kernel_name: str = "python3") -> Path:
    """Copy ``src`` to ``dst`` without outputs, with the kernel set to ``kernel_name`` and the
    ``params`` injected papermill-style: a code cell tagged ``injected-parameters`` right
    after the cell tagged ``parameters`` (the committed notebook is never touched)."""
    import nbformat

    nb = nbformat.read(str(src), as_version=4)
    nb = copy.deepcopy(nb)
    idx = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if idx is None and "parameters" in cell.metadata.get("tags", []):
                idx = i
    if idx is None:
        raise AssertionError(f"{src.name}: no code cell tagged 'parameters' to inject the test parameters after")
    source = "# Parameters injected by tests/test_browser.py\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(idx + 1, cell)
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": "Python 3", "language": "python"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dst))
    return dst


# --------------------------------------------------------------------------- page errors
#: External requests that are expected, aborted by the route (they never leave the
#: machine) and then not counted as failures, with the reason. Keep this list short.
EXPECTED_BLOCKED = [
    # Voila 0.5's "lab" template (share/jupyter/voila/templates/lab/index.html.j2) links
    # Font Awesome 5 CSS from cdn.jsdelivr.net; voila.js bundles Font Awesome 5.15 itself,
    # so the icons render without it. The browser reports the aborted load as a console
    # error "Failed to load resource: net::ERR_BLOCKED_BY_CLIENT", ignored for these URLs only.
    (
        "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@",
        "Voila lab template's CDN link to Font Awesome (bundled in voila.js too)",
    ),
]


def _expected_block(url: str) -> str | None:
    return next((reason for prefix, reason in EXPECTED_BLOCKED if url.startswith(prefix)), None)


@dataclass
class PageWatch:
    """Collects console errors, uncaught page errors, failed requests and blocked external
    requests of a page (and of the browser context's routes)."""

    console: list = field(default_factory=list)  # all console messages (type, text, url)
    errors: list = field(default_factory=list)  # console errors that count
    ignored: list = field(default_factory=list)  # console errors ignored, with the reason
    page_errors: list = field(default_factory=list)
    blocked: list = field(default_factory=list)  # external requests aborted
    failed: list = field(default_factory=list)  # local requests that failed

    def attach_context(self, context):
        def route(r):
            host = urlsplit(r.request.url).hostname
            if r.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)

    def attach(self, page):
        def on_console(msg):
            loc = msg.location or {}
            rec = {"type": msg.type, "text": msg.text, "url": loc.get("url", "")}
            self.console.append(rec)
            if msg.type != "error":
                return
            reason = _expected_block(rec["url"])
            if reason and "ERR_BLOCKED_BY_CLIENT" in msg.text:
                self.ignored.append({**rec, "reason": reason})
                return
            self.errors.append(rec)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on(
            "requestfailed",
            lambda req: (
                self.failed.append(f"{req.url} {req.failure}") if urlsplit(req.url).hostname in LOCAL_HOSTS else None
            ),
        )

    def problems(self) -> list[str]:
        out = [f"console error: {e['text']} ({e['url']})" for e in self.errors]
        out += [f"page error: {e}" for e in self.page_errors]
        out += [f"request to a non-local address (blocked): {u}" for u in self.blocked if not _expected_block(u)]
        return out

    def dump(self, path: Path):
        path.write_text(
            json.dumps(
                {
                    "console": self.console,
                    "errors": self.errors,
                    "ignored": self.ignored,
                    "page_errors": self.page_errors,
                    "blocked": self.blocked,
                    "failed_local_requests": self.failed,
                },
                indent=2,
            )
        )


#: JS: texts of error outputs shown in the page (kernel errors, tracebacks in stderr,
#: widgets that failed to render, Voila's cell-error message).
JS_ERROR_OUTPUTS = r"""
() => {
  const out = [];
  if (!document.body) return out;
  // textContent, not innerText: Voila keeps the page hidden behind its spinner until done
  const sel = '[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"], .jp-RenderedText, .jp-OutputArea-output pre';
  const seen = new Set();
  for (const el of document.querySelectorAll(sel)) {
    const t = el.textContent || '';
    if (seen.has(t)) continue;
    seen.add(t);
    if (/Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b.*:|There was an error when executing cell/m.test(t))
      out.push(t.slice(0, 3000));
  }
  const where = el => {
    const cell = el.closest('.jp-Cell');
    const cells = [...document.querySelectorAll('.jp-Cell')];
    const text = cell ? (cell.innerText || '').replace(/\s+/g, ' ').trim().slice(0, 160) : '';
    const tool = el.closest('[data-browser-test]');
    return `cell ${cell ? cells.indexOf(cell) : '?'} of the page${tool ? ', tool ' + tool.getAttribute('data-browser-test') : ''} (cell text: "${text}")`;
  };
  const markers = ['Error displaying widget', 'Error rendering', 'Failed to display', 'There was an error when executing cell', 'Kernel Error'];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const p = n.parentElement;
    if (!p || ['SCRIPT', 'STYLE'].includes(p.tagName)) continue;
    for (const m of markers)
      if (n.textContent.includes(m)) out.push(`"${n.textContent.trim().slice(0, 200)}" in ${where(p)}`);
  }
  return out;
}
"""


# --------------------------------------------------------------------------- widgets
#: JS: mark each ipywidgets tool (the innermost box that holds the slider with the given
#: description and an Output widget) with ``data-browser-test=<tag>``; returns how many
#: tools match. ``prefer`` lists descriptions of other controls the tool should also have
#: (the first tool having all of them wins, else the first tool with the slider).
JS_MARK_TOOL = r"""
([label, prefer, tag]) => {
  const labelOf = el => ((el.querySelector(':scope > .widget-label') || {}).innerText || '').trim();
  const sliders = [...document.querySelectorAll('.widget-slider')].filter(s => labelOf(s) === label);
  const tools = [];
  for (const s of sliders) {
    let box = s.parentElement;
    while (box && !(box.querySelector('.widget-output') && box.contains(s) && box !== document.body)) box = box.parentElement;
    if (box) tools.push([s, box]);
  }
  const has = (box, l) => [...box.querySelectorAll('.widget-label')].some(x => x.innerText.trim() === l);
  let pick = tools.find(([s, b]) => prefer.every(l => has(b, l))) || tools[0];
  if (!pick) return 0;
  pick[0].setAttribute('data-browser-test', tag + '-slider');
  pick[1].setAttribute('data-browser-test', tag);
  return tools.length;
}
"""

#: JS: a fingerprint of the images of a marked tool's Output (their sources).
JS_IMAGES = r"""
(tag) => {
  const box = document.querySelector(`[data-browser-test="${tag}"]`);
  if (!box) return null;
  const imgs = [...box.querySelectorAll('.widget-output img')];
  return imgs.map(i => (i.complete && i.naturalWidth > 0 ? 'ok:' : 'loading:') + i.src.length + ':' + i.src.slice(-64)).join('|');
}
"""


def raise_on_error_output(page, where: str):
    shown = page.evaluate(JS_ERROR_OUTPUTS)
    if shown:
        raise AssertionError(f"error output shown in the page ({where}):\n" + "\n---\n".join(shown))


def slider_readout(page, tag: str) -> str:
    loc = page.locator(f'[data-browser-test="{tag}-slider"] .widget-readout')
    return loc.first.inner_text().strip() if loc.count() else ""


def mark_tool(page, label: str, tag: str, prefer=(), timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        raise_on_error_output(page, f"waiting for the tool with slider {label!r}")
        n = page.evaluate(JS_MARK_TOOL, [label, list(prefer), tag])
        if n:
            return n
        if time.monotonic() > deadline:
            raise AssertionError(f"no widget tool with a slider described {label!r} appeared in {timeout:.0f} s")
        time.sleep(0.5)


def wait_images(page, tag: str, timeout: float = 60.0) -> str:
    """Until the tool's Output shows at least one loaded image; returns the fingerprint."""
    deadline = time.monotonic() + timeout
    while True:
        raise_on_error_output(page, f"waiting for the image of {tag!r}")
        fp = page.evaluate(JS_IMAGES, tag)
        if fp and "loading:" not in fp:
            return fp
        if time.monotonic() > deadline:
            raise AssertionError(f"tool {tag!r} shows no image after {timeout:.0f} s (fingerprint {fp!r})")
        time.sleep(0.3)


def move_slider(page, tag: str, presses: int, key: str = "ArrowRight"):
    """Move the marked slider with the keyboard (focus the noUiSlider handle, press keys)."""
    handle = page.locator(f'[data-browser-test="{tag}-slider"] .noUi-handle').first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(presses):
        page.keyboard.press(key)
        time.sleep(0.05)


def wait_image_change(page, tag: str, before: str, timeout: float = 90.0, settle: float = 1.5) -> str:
    """Until the tool's image fingerprint differs from ``before`` and then stays the same
    for ``settle`` seconds (continuous updates may redraw several times)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        raise_on_error_output(page, f"waiting for {tag!r} to redraw")
        fp = page.evaluate(JS_IMAGES, tag)
        if fp != last:
            last, since = fp, time.monotonic()
        elif fp and fp != before and "loading:" not in fp and time.monotonic() - since >= settle:
            return fp
        time.sleep(0.25)
    raise AssertionError(f"the image of {tag!r} did not change (and settle) within {timeout:.0f} s")


def output_locator(page, tag: str):
    return page.locator(f'[data-browser-test="{tag}"] .widget-output').last


# --------------------------------------------------------------------------- screenshots
def png_stats(png: bytes) -> dict:
    from PIL import Image, ImageStat

    im = Image.open(io.BytesIO(png)).convert("RGB")
    st = ImageStat.Stat(im)
    return {"size": im.size, "mean": [round(m, 2) for m in st.mean], "std": [round(s, 2) for s in st.stddev]}


def png_difference(a: bytes, b: bytes) -> dict:
    """Pixel difference of two PNG screenshots (cropped to the common size): the fraction
    of pixels that differ and the mean absolute difference (0-255)."""
    import numpy as np
    from PIL import Image

    ia = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.int16)
    ib = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int16)
    h, w = min(ia.shape[0], ib.shape[0]), min(ia.shape[1], ib.shape[1])
    d = np.abs(ia[:h, :w] - ib[:h, :w])
    return {
        "bytes_equal": a == b,
        "changed_fraction": float((d.max(axis=2) > 0).mean()),
        "mean_abs": float(d.mean()),
        "size_a": ia.shape[:2],
        "size_b": ib.shape[:2],
    }


def assert_shows_figure(png: bytes, what: str):
    """A rendered figure, not a blank area: some pixel variation."""
    st = png_stats(png)
    assert st["size"][0] >= 100 and st["size"][1] >= 60, f"{what}: screenshot too small {st}"
    assert max(st["std"]) > 5, f"{what}: screenshot looks blank {st}"
