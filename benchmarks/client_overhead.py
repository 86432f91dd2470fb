"""How much the API client adds to a call, against a bare ``requests.Session`` doing the same call.

Both send ``GET /api/v1/oss/file/detail?fileID=...`` with the same headers to the same in-process
emulator over loopback, in alternating rounds (so drift in machine load hits both alike), and parse
the JSON answer. The client's extra work is the retry loop's bookkeeping, the rate limiter (set to
unlimited here: spacing is policy, not overhead), the token provider, envelope checks and building
the typed result.

Prints per-call medians and the ratio client / bare (target: <= 1.2). Exit status 1 when the
target is missed.

Run: ``.venv/bin/python benchmarks/client_overhead.py [--rounds N] [--calls N]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from imgsync.client.api import Api
from imgsync.client.session import USER_AGENT
from imgsync.config import DEFAULT_QPS, AccountSettings, NetworkSettings, Settings
from imgsync.emulator import Emulator

TARGET_RATIO = 1.2
# Rounds alternate which side goes first; each round times CALLS calls of each side.
DEFAULT_ROUNDS = 12
DEFAULT_CALLS = 150
WARMUP_CALLS = 50
# A loopback round trip normally takes well under a millisecond; tens of milliseconds means the
# server, not the client, dominates every figure.
SLOW_LOOPBACK_S = 0.02


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # measure the code, not a log handler

    with (
        Emulator(port=0, client_id="bench", client_secret="bench") as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = Settings(
            account=AccountSettings(
                base_url=emu.base_url, client_id="bench", client_secret="bench"
            ),
            network=NetworkSettings(qps=dict.fromkeys(DEFAULT_QPS, 0.0)),
            data_dir=Path(tmp),
        )
        with Api.from_settings(settings) as api:
            file_id = api.mkdir("bench", "")[0].dir_id
            token = api.tokens.token()
            url = emu.base_url + "/api/v1/oss/file/detail"
            headers = {
                "Platform": "open_platform",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Authorization": f"Bearer {token}",
            }
            # Two baselines: requests' defaults, and with trust_env off (no per-call netrc and
            # proxy lookups; the client skips the netrc lookup by passing its own auth hook).
            # The ratio is taken against the faster one, so it never flatters the client.
            bare = requests.Session()
            lean = requests.Session()
            lean.trust_env = False

            def bare_call(session: requests.Session = bare) -> None:
                resp = session.get(
                    url, params={"fileID": file_id}, headers=headers, timeout=(10.0, 60.0)
                )
                body = resp.json()
                assert body["code"] == 0 and body["data"]["fileId"] == file_id

            def lean_call() -> None:
                bare_call(lean)

            def client_call() -> None:
                assert api.detail(file_id).file_id == file_id

            contenders = {"bare": bare_call, "lean": lean_call, "client": client_call}
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for call in contenders.values():
                timed(call, WARMUP_CALLS)
            for round_no in range(args.rounds):
                names = list(contenders)
                rotated = names[round_no % len(names) :] + names[: round_no % len(names)]
                for name in rotated:
                    times[name].append(timed(contenders[name], args.calls))
            bare.close()
            lean.close()

    median = {name: statistics.median(values) for name, values in times.items()}
    baseline = min(median["bare"], median["lean"])
    ratio = median["client"] / baseline
    shape = f"median of {args.rounds} rounds x {args.calls} calls"
    print(f"bare requests.Session           : {median['bare'] * 1e6:8.1f} µs/call ({shape})")
    print(f"bare requests.Session, no env   : {median['lean'] * 1e6:8.1f} µs/call")
    print(f"imgsync client (Api.detail)     : {median['client'] * 1e6:8.1f} µs/call")
    print(f"client overhead vs faster bare  : {(median['client'] - baseline) * 1e6:8.1f} µs/call")
    print(f"ratio client / faster bare      : {ratio:.3f} (target <= {TARGET_RATIO})")
    if baseline > SLOW_LOOPBACK_S:
        print(
            f"note: a loopback call takes {baseline * 1e3:.0f} ms; the server is slow (Nagle's "
            "algorithm with delayed ACKs?), which hides the client's overhead in the ratio"
        )
    return 0 if ratio <= TARGET_RATIO else 1


def timed(call: Callable[[], None], n: int) -> float:
    """Seconds per call over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


if __name__ == "__main__":
    sys.exit(main())
