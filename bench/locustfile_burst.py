"""Locust users of the 16:00 burst (bench/burst.py writes the plan and runs this file).

* one FacilityUser per facility: at its drawn moment of the window it opens its report of the
  day (GET, the pre-filled form's data) and files it (PUT), once;
* one SytUser per province: opens the composer of the day's SYT report, saves the notice, and
  sends the report once in the last tenth of the window;
* BytUsers: the national dashboard page (map included) and the national view's data, again and
  again.

Every request that does not answer 200 is a failure in locust's statistics.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["OXY_BURST_PLAN"]).read_text(encoding="utf-8"))
WINDOW = float(PLAN["window_s"])
DAY = PLAN["day"]
_facilities = list(PLAN["facilities"])  # [facility id, token, offset s]
_syt = list(PLAN["syt"])  # [org id, token]
START: list[float] = []


@events.test_start.add_listener
def _started(**_kw: Any) -> None:
    START.append(time.time())


def _t0() -> float:
    return START[0] if START else time.time()


def _check(response: Any) -> None:
    if response.status_code != 200:
        response.failure(f"{response.status_code}: {response.text[:200]}")
    else:
        response.success()


class FacilityUser(HttpUser):
    """A facility's staff member filing the day's report once."""

    fixed_count = len(PLAN["facilities"])
    wait_time = between(1, 2)

    def on_start(self) -> None:
        self.facility, token, self.offset = _facilities.pop()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.done = False

    @task
    def file_report(self) -> None:
        if self.done:
            time.sleep(5)
            return
        pause = _t0() + float(self.offset) - time.time()
        if pause > 0:
            time.sleep(pause)
        url = f"/api/facilities/{self.facility}/reports/{DAY}"
        with self.client.get(
            url, headers=self.headers, name="GET facility report", catch_response=True
        ) as r:
            _check(r)
        # Figures that pass the report's rules (a generated facility has at least 30 beds).
        current = random.randint(5, 20)
        body = {
            "patients_current": current,
            "patients_new": random.randint(0, current // 3),
            "discharged_evening": random.randint(0, 3),
            "on_oxygen": {"mask": random.randint(0, current // 2)},
        }
        with self.client.put(
            url, json=body, headers=self.headers, name="PUT facility report", catch_response=True
        ) as r:
            _check(r)
        self.done = True


class SytUser(HttpUser):
    """A province's officer composing the SYT report and sending it once near the end."""

    fixed_count = len(PLAN["syt"])
    wait_time = between(WINDOW / 60, WINDOW / 20)

    def on_start(self) -> None:
        self.org, token = _syt.pop()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.sent = False

    @task
    def compose(self) -> None:
        with self.client.get(
            f"/api/syt/{self.org}/report",
            params={"day": DAY},
            headers=self.headers,
            name="GET SYT composer",
            catch_response=True,
        ) as r:
            _check(r)
        with self.client.put(
            f"/api/syt/{self.org}/reports/{DAY}",
            json={"notice": f"Tình hình cung ứng oxy ngày {DAY} ổn định."},
            headers=self.headers,
            name="PUT SYT report",
            catch_response=True,
        ) as r:
            _check(r)
        if not self.sent and time.time() - _t0() > 0.9 * WINDOW:
            with self.client.post(
                f"/api/syt/{self.org}/reports/{DAY}/send",
                params={"confirm_incomplete": "true"},
                headers=self.headers,
                name="POST SYT send",
                catch_response=True,
            ) as r:
                _check(r)
            self.sent = True


class BytUser(HttpUser):
    """A ministry officer refreshing the national dashboard (map) and the national view."""

    fixed_count = int(PLAN["byt_users"])
    wait_time = between(WINDOW / 60, WINDOW / 30)

    def on_start(self) -> None:
        page = self.client.get("/login", name="GET /login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None, "no CSRF token on /login"
        self.client.post(
            "/login",
            data={
                "username": PLAN["byt"]["username"],
                "password": PLAN["byt"]["password"],
                "csrf_token": token.group(1),
            },
            name="POST /login",
        )

    @task
    def national(self) -> None:
        with self.client.get("/byt", name="GET BYT dashboard (map)", catch_response=True) as r:
            if r.status_code == 200 and r.url is not None and r.url.endswith("/login"):
                r.failure("not logged in")
            else:
                _check(r)
        with self.client.get(
            "/api/byt/national", params={"day": DAY}, name="GET BYT national view",
            catch_response=True,
        ) as r:  # fmt: skip
            _check(r)
