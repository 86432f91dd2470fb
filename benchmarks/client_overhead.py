"""How much the API client adds to a call, against a bare ``requests.Session`` doing the same call.

Both send ``GET /api/v1/oss/file/detail?fileID=...`` with the same headers to the same in-process
emulator over loopback, in alternating rounds (so drift in machine load hits both alike), and parse
the JSON answer. The client's extra work is the retry loop's bookkeeping, the rate limiter (set to
unlimited here: spacing is policy, not overhead), the token provider, envelope checks and building
the typed result.

Prints per-call medians and the ratio client / bare (target: <= 1.2).

Run: ``.venv/bin/python benchmarks/client_overhead.py [--rounds N] [--calls N]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from imgsync.api import Api
from imgsync.config import DEFAULT_QPS, AccountSettings, NetworkSettings, Settings
from imgsync.emulator import Emulator
from imgsync.http import USER_AGENT

TARGET_RATIO = 1.2
# Rounds alternate which side goes first; each round times CALLS calls of each side.
DEFAULT_ROUNDS = 12
DEFAULT_CALLS = 150
WARMUP_CALLS = 50


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
            bare = requests.Session()

            def bare_call() -> None:
                resp = bare.get(
                    url, params={"fileID": file_id}, headers=headers, timeout=(10.0, 60.0)
                )
                body = resp.json()
                assert body["code"] == 0 and body["data"]["fileId"] == file_id

            def client_call() -> None:
                assert api.detail(file_id).file_id == file_id

            def timed(call, n: int) -> float:
                start = time.perf_counter()
                for _ in range(n):
                    call()
                return (time.perf_counter() - start) / n

            timed(bare_call, WARMUP_CALLS)
            timed(client_call, WARMUP_CALLS)
            bare_times: list[float] = []
            client_times: list[float] = []
            for round_no in range(args.rounds):
                order = [(bare_call, bare_times), (client_call, client_times)]
                if round_no % 2:
                    order.reverse()
                for call, sink in order:
                    sink.append(timed(call, args.calls))
            bare.close()

    bare_median = statistics.median(bare_times)
    client_median = statistics.median(client_times)
    ratio = client_median / bare_median
    print(
        f"bare requests.Session : {bare_median * 1e6:8.1f} µs/call (median of {args.rounds} "
        f"rounds x {args.calls} calls)"
    )
    print(f"imgsync client        : {client_median * 1e6:8.1f} µs/call")
    print(f"client overhead       : {(client_median - bare_median) * 1e6:8.1f} µs/call")
    print(f"ratio client/bare     : {ratio:.3f} (target <= {TARGET_RATIO})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
