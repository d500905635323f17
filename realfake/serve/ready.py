"""Wait until a `realfake serve` process answers /healthz (the tests and the benchmark start one)."""

from __future__ import annotations

import subprocess
import time


def wait_until_serving(url: str, proc: subprocess.Popen, seconds: float = 60.0) -> str | None:
    """None once GET url/healthz answers 200; else why not (the process exited, or the time ran out)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"serve exited {proc.returncode}"
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return None
        except httpx.TransportError:
            time.sleep(0.1)
    return f"serve did not answer /healthz within {seconds:.0f} s"
