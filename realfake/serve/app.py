"""`realfake serve`: one page and a JSON API over `realfake predict`'s own scoring path.

One model is loaded once. Every scoring job runs on one worker thread (torch with `--threads` threads), so
requests queue instead of oversubscribing the cores; past `max_queue` waiting requests the answer is 503.
Uploads are read into memory under the limits of realfake.serve.uploads and dropped with the response.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from realfake.detector.checkpoint import read_checkpoint
from realfake.detector.fitness import fitness_of
from realfake.detector.model_card import view_line
from realfake.predict import Predictor, Upload, csv_text, records, rule_words
from realfake.serve.uploads import Limits, Refused, read_uploads
from realfake.serve.visuals import photos

log = logging.getLogger(__name__)
STATIC = resources.files("realfake.serve") / "static"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, default=_json_default), status_code=status, media_type="application/json")


def model_facts(predictor: Predictor, model_path: Path) -> dict[str, Any]:
    """What `/api/model` and the page's header say: the view, the data profile, the operating point, the fitness."""
    checkpoint = predictor.scorer.checkpoint
    info = checkpoint.get("info") or {}
    pre = checkpoint["preprocessing"]
    fitness = fitness_of(checkpoint)
    return {
        "model": model_path.name,
        "view": predictor.view["name"],
        "view_text": view_line(predictor.view, int(pre["size"])).removeprefix("- ").replace("`", ""),
        "size": int(pre["size"]),
        "arch": (checkpoint.get("model_config") or {}).get("arch", "cnn"),
        "profile": (checkpoint.get("run") or {}).get("profile") or info.get("profile") or fitness.get("profile"),
        "threshold": predictor.point.t_fake,  # fake from here
        "t_real": predictor.point.t_real,  # real below; uncertain between
        "rule": rule_words(predictor.point.record()),
        "operating_point": predictor.point.record(),
        "val_auc": info.get("val_auc"),
        "fit": bool(fitness.get("fit")),
        "fitness_reasons": list(fitness.get("reasons") or []),
        "warning": predictor.warning,
    }


def create_app(model_path: str | Path, limits: Limits | None = None, threads: int = 2, max_queue: int = 32,
               device: str = "cpu") -> FastAPI:
    """The app with its model loaded (a bad model file is a UserError here, before the server listens)."""
    model_path = Path(model_path)
    read_checkpoint(model_path)
    torch.set_num_threads(threads)
    predictor = Predictor(model_path, device=device)
    limits = limits or Limits()
    facts = model_facts(predictor, model_path)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realfake-score")
    state = {"pending": 0}
    app = FastAPI(title="realfake", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.predictor, app.state.limits, app.state.worker = predictor, limits, worker
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    def work(uploads: list[Upload], visuals: bool, gradcam: bool) -> dict[str, Any]:
        table, scored = predictor.score(uploads)
        out: dict[str, Any] = {"threshold": predictor.point.t_fake, "t_real": predictor.point.t_real,
                               "warning": predictor.warning, "rows": records(table)}
        if visuals:
            out["csv"] = csv_text(table)  # what `realfake predict --out results.csv` writes
            out["photos"] = photos(predictor, uploads, table, scored, gradcam)
        return out

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "pending": state["pending"]}

    @app.get("/api/model")
    def model() -> Response:
        return json_response(facts)

    @app.post("/api/predict")
    async def predict(request: Request, visuals: bool = False, gradcam: bool = True) -> Response:
        """multipart/form-data with one or more files: predict's rows (and, with ?visuals=true, the pictures)."""
        try:
            uploads = await read_uploads(request.headers.get("content-type"), request.headers.get("content-length"),
                                         request.stream(), limits)
        except Refused as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        if state["pending"] >= max_queue:
            return JSONResponse({"detail": f"busy: {state['pending']} requests are queued; try again shortly"},
                                status_code=503, headers={"Retry-After": "5"})
        state["pending"] += 1
        try:
            result = await asyncio.get_running_loop().run_in_executor(worker, work, uploads, visuals, gradcam)
        finally:
            state["pending"] -= 1
            del uploads
        return json_response(result)

    return app


def run_serve(model: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 2, max_files: int = 16,
              max_mb: float = 20, max_queue: int = 32, device: str = "cpu", max_request_mb: float = 64) -> None:
    """The CLI command: load the model, then serve until interrupted."""
    import uvicorn

    from realfake.core.errors import UserError

    if max_files < 1 or max_queue < 1 or max_mb <= 0 or max_request_mb < max_mb:
        raise UserError("--max-files and --max-queue must be >= 1, --max-mb > 0 and --max-request-mb >= --max-mb")
    app = create_app(model, Limits(max_files, int(max_mb * 2**20), int(max_request_mb * 2**20)), threads, max_queue,
                     device)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can upload photos to it", host)
    log.info("realfake serve: http://%s:%d/ (model %s; Ctrl+C stops)", host, port, model)
    uvicorn.run(app, host=host, port=port, log_level="warning", workers=1)
