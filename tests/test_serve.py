"""`realfake serve`: the JSON API through FastAPI's TestClient (real model, real MTCNN, real photos), and the page in
a real headless Chromium against a real server on 127.0.0.1 (marker `chromium`)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from realfake.predict import predict, run_predict
from realfake.serve.app import create_app
from realfake.serve.uploads import Limits
from tests import test_predict
from tests.test_imageio import huge_png_header
from tests.test_predict import cli, one_line_refusal, tiny_model

REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(max_files=4, max_bytes=1_000_000, max_request_bytes=2_500_000)
photos = test_predict.photos  # the fixture: real photos from the embedded sample


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A real checkpoint trained as on the embedded sample (so not fit to judge, by rule)."""
    return tiny_model(tmp_path_factory.mktemp("serve_model"), "sample")


@pytest.fixture(scope="module")
def client(model) -> TestClient:
    with TestClient(create_app(model, LIMITS, threads=1)) as c:
        yield c


def upload(client: TestClient, files: list[tuple[str, bytes]], **params) -> object:
    return client.post("/api/predict", params=params, files=[("files", (name, data)) for name, data in files])


def hostile_files(photos: dict[str, Path]) -> dict[str, bytes]:
    jpeg = photos["gan"].read_bytes()
    return {"text.jpg": b"this is not an image\n" * 20, "bomb.png": huge_png_header(20000, 20000),
            "cut.jpg": jpeg[: len(jpeg) // 3]}


def decoded(url: str) -> Image.Image:
    """A data: URL's picture, fully decoded."""
    head, data = url.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


def test_health_and_page_and_static_files(client):
    assert client.get("/healthz").json()["ok"] is True
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.split("<body>")[1]
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and "http://" not in asset.text and "https://" not in asset.text  # no CDN


def test_every_static_file_ships_as_package_data():
    """The page must work from an installed wheel too: pyproject's package-data covers every file it serves."""
    import fnmatch
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["realfake.serve"]
    static = REPO / "realfake" / "serve" / "static"
    names = [p.relative_to(static.parent).as_posix() for p in static.rglob("*") if p.is_file()]
    assert {"static/index.html", "static/app.js", "static/style.css"} <= set(names)
    assert all(any(fnmatch.fnmatch(n, g) for g in globs) for n in names), names


def test_model_facts_name_the_view_and_the_fitness_verdict(client):
    facts = client.get("/api/model").json()
    assert facts["view"] == "aligned" and "aligned" in facts["view_text"]
    assert facts["profile"] == "sample" and facts["fit"] is False
    assert any("embedded sample" in r for r in facts["fitness_reasons"])
    assert facts["warning"].startswith("model not fit to judge")
    assert 0 <= facts["t_real"] <= facts["threshold"] <= 1
    assert facts["operating_point"]["target_fpr"] == 0.05 and facts["rule"].startswith("fake from p_fake")


def test_api_scores_a_face_bit_for_bit_as_predict(client, model, photos):
    expected = predict([str(photos["gan"])], model)
    got = upload(client, [("gan.jpg", photos["gan"].read_bytes())])
    assert got.status_code == 200
    rows = got.json()["rows"]
    assert [r["file"] for r in rows] == ["gan.jpg"] * len(expected)
    assert [r["p_fake"] for r in rows] == expected["p_fake"].tolist()  # exact float equality
    assert [r["decision"] for r in rows] == expected["decision"].tolist()
    assert all(r["warning"].startswith("model not fit to judge") for r in rows)


def test_hostile_files_give_error_rows_and_the_rest_is_scored(client, photos):
    files = [*hostile_files(photos).items(), ("gan.jpg", photos["gan"].read_bytes())]
    got = upload(client, files, visuals="true")
    assert got.status_code == 200
    rows = {r["file"]: r for r in got.json()["rows"]}
    assert rows["text.jpg"]["reason_code"] == "not_an_image" and rows["text.jpg"]["reason"]
    assert rows["bomb.png"]["reason_code"] == "too_many_pixels"
    assert rows["cut.jpg"]["reason_code"] == "truncated"
    assert rows["gan.jpg"]["reason_code"] is None and 0 <= rows["gan.jpg"]["p_fake"] <= 1
    assert [p["file"] for p in got.json()["photos"]] == [name for name, _ in files]
    assert [p["photo"] for p in got.json()["photos"][:3]] == [None, None, None]


def test_visuals_show_the_crop_the_model_scored_its_heat_map_and_the_boxed_photo(client, model, photos):
    from realfake.predict import Predictor, Upload

    got = upload(client, [("gan.jpg", photos["gan"].read_bytes())], visuals="true").json()
    (photo,) = got["photos"]
    face = photo["faces"][0]
    _, scored = Predictor(model).score([Upload("gan.jpg", photos["gan"].read_bytes())])
    crop = np.asarray(decoded(face["crop"]).convert("RGB"))
    assert np.array_equal(crop, scored[("gan.jpg", 0)].image.transpose(1, 2, 0))  # lossless: the model's pixels
    heat = decoded(face["heatmap"])
    assert heat.size == decoded(face["crop"]).size and np.asarray(heat).std() > 0
    assert decoded(photo["photo"]).size == Image.open(photos["gan"]).size  # 256 px: shown at its own size
    no_cam = upload(client, [("gan.jpg", photos["gan"].read_bytes())], visuals="true", gradcam="false").json()
    assert no_cam["photos"][0]["faces"][0]["heatmap"] is None


def test_page_csv_is_the_file_predict_writes(client, model, photos, tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    files = [("gan.jpg", photos["gan"].read_bytes()), ("lfw.jpg", photos["lfw"].read_bytes()),
             ("tiny36.png", photos["tiny36"].read_bytes()), ("text.jpg", b"not an image\n" * 30)]
    for name, data in files:
        (folder / name).write_bytes(data)
    monkeypatch.chdir(folder)
    run_predict([name for name, _ in files], str(model), str(tmp_path / "results.csv"), threads=1, device="cpu")
    got = upload(client, files, visuals="true").json()
    assert got["csv"] == (tmp_path / "results.csv").read_text()


def test_over_limit_uploads_are_refused_with_413_and_bad_requests_with_422(client, photos):
    face = photos["gan"].read_bytes()
    big = upload(client, [("big.png", b"\0" * (LIMITS.max_bytes + 1))])
    assert big.status_code == 413 and "big.png: file too large" in big.json()["detail"]
    many = upload(client, [(f"{k}.jpg", face) for k in range(LIMITS.max_files + 1)])
    assert many.status_code == 413 and f"at most {LIMITS.max_files}" in many.json()["detail"]
    together = upload(client, [(f"{k}.png", b"\0" * 900_000) for k in range(3)])  # each under the file limit
    assert together.status_code == 413 and "request too large: at most 2.4 MB in all" in together.json()["detail"]
    huge = client.post("/api/predict", content=b"x", headers={
        "content-type": "multipart/form-data; boundary=b", "content-length": str(LIMITS.max_body + 1)})
    assert huge.status_code == 413 and "request too large" in huge.json()["detail"]
    assert client.post("/api/predict", json={"a": 1}).status_code == 422
    assert client.post("/api/predict", data={"note": "no file"}, files=[]).status_code == 422
    assert upload(client, [("gan.jpg", face)]).status_code == 200  # the server is still fine


def test_uploads_never_touch_a_temp_file(client, photos, monkeypatch):
    """Uploads are parsed in memory: no temp file is opened (Starlette's form parser would spool one per file)."""
    import tempfile

    import starlette.formparsers

    def refuse(*_a, **_k):
        raise AssertionError("an upload was spooled to a temp file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)
    got = upload(client, [("gan.jpg", photos["gan"].read_bytes())], visuals="true")
    assert got.status_code == 200 and got.json()["rows"][0]["reason_code"] is None


def test_repeated_upload_names_each_get_their_own_rows(client, photos):
    face = photos["gan"].read_bytes()
    rows = upload(client, [("a.jpg", face), ("a.jpg", face)]).json()["rows"]
    assert [r["file"] for r in rows if r["face_index"] == 0] == ["a.jpg", "a.jpg (2)"]
    assert rows[0]["p_fake"] == rows[-1]["p_fake"]


@pytest.mark.slow  # two fresh processes (~5 s each here)
def test_serve_refuses_bad_options_and_models_in_one_line(tmp_path):
    assert "--max-request-mb >= --max-mb" in one_line_refusal(cli("serve", "--max-mb", "0"))
    assert "not found" in one_line_refusal(cli("serve", "--model", str(tmp_path / "none.pt")))


def test_requests_queue_on_one_worker_and_past_max_queue_get_503(model, photos):
    """Scoring is serialised on one worker thread; a request over --max-queue is answered 503 at once."""
    import threading

    face = photos["gan"].read_bytes()
    release = threading.Event()
    with TestClient(create_app(model, LIMITS, threads=1, max_queue=1)) as c:
        c.app.state.worker.submit(release.wait)  # the worker is busy
        first: dict = {}
        waiting = threading.Thread(target=lambda: first.update(r=upload(c, [("gan.jpg", face)])))
        waiting.start()
        for _ in range(200):
            if c.get("/healthz").json()["pending"] == 1:
                break
            time.sleep(0.05)
        busy = upload(c, [("gan.jpg", face)])
        assert busy.status_code == 503 and "busy" in busy.json()["detail"] and busy.headers["retry-after"]
        release.set()
        waiting.join(120)
        assert first["r"].status_code == 200  # the queued one is answered once the worker is free
        assert upload(c, [("gan.jpg", face)]).status_code == 200


# ---------------------------------------------------------------- the page in a real browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(model):
    """`realfake serve` in its own process on a free loopback port; stopped by its PID."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "realfake.cli", "serve", "--model", str(model), "--port",
                             str(port), "--threads", "1", "--device", "cpu"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        from realfake.serve.ready import wait_until_serving

        why = wait_until_serving(url, proc)
        if why:
            pytest.fail(f"{why}: {proc.stdout.read()[-2000:] if proc.poll() is not None else ''}")
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def chromium(tmp_path: Path):
    """Headless Chromium through Debian's chromedriver, or a clean skip where either is missing."""
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not Path(driver_path).exists() or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("headless Chromium (Debian packages chromium, chromium-driver) not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def image_decoded(driver, element) -> bool:
    return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", element)


@pytest.mark.chromium
def test_page_in_headless_chromium_shows_verdict_heat_map_and_crop(server, photos, tmp_path):
    """Load the page, upload a photo through the file input, wait for the verdict; screenshot to
    $REALFAKE_SERVE_SCREENSHOT (docs/serve.png is made this way) or the test's temp dir."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium(tmp_path)
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: "not fit to judge" in d.find_element(By.ID, "fitness").text)
        driver.find_element(By.ID, "files").send_keys("\n".join(str(photos[n]) for n in ("gan", "lfw", "tiny36")))
        verdicts = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, ".decision")))
        wait.until(lambda d: "faces scored" in d.find_element(By.ID, "status").text)
        assert verdicts[0].text in ("real", "fake", "uncertain")
        for css in (".crop", ".heatmap", ".boxed"):
            images = driver.find_elements(By.CSS_SELECTOR, css)
            assert images and all(image_decoded(driver, img) for img in images), css
        assert "too small" in driver.find_element(By.CSS_SELECTOR, ".reason").text
        assert driver.find_element(By.ID, "csv").is_displayed()
        shot = Path(os.environ.get("REALFAKE_SERVE_SCREENSHOT") or tmp_path / "serve.png")
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]  # the whole page, not the window
        png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
            "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})["data"]
        shot.write_bytes(base64.b64decode(png))
        assert Image.open(shot).size[1] >= size["height"] - 1
    finally:
        driver.quit()
