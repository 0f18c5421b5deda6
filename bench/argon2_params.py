"""CPU time of one argon2id verification for each of OWASP's equivalent minimum configurations
(p = 1), as the server runs it: in a worker thread, passes interleaved so that a change in the
machine's load hits every configuration alike (docs/security.md, "Password hashing cost").

Run: .venv/bin/python bench/argon2_params.py [passes]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

# OWASP password storage cheat sheet: (memory KiB, iterations), parallelism 1.
CONFIGS = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)]
CHECKS_PER_PASS = 10


def cpu_per_check(hasher: PasswordHasher, stored: str) -> float:
    """CPU seconds of this thread per (failing) verification."""
    t0 = time.thread_time()
    for _ in range(CHECKS_PER_PASS):
        with contextlib.suppress(VerifyMismatchError):
            hasher.verify(stored, "a wrong password")
    return (time.thread_time() - t0) / CHECKS_PER_PASS


def main() -> None:
    """Interleaved passes; the median and minimum per configuration."""
    passes = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    hashers = {c: PasswordHasher(memory_cost=c[0], time_cost=c[1], parallelism=1) for c in CONFIGS}
    stored = {c: h.hash("bench-password-1") for c, h in hashers.items()}
    seen: dict[tuple[int, int], list[float]] = {c: [] for c in CONFIGS}
    with ThreadPoolExecutor(1) as worker:
        for _ in range(passes):
            for c in CONFIGS:
                seen[c].append(worker.submit(cpu_per_check, hashers[c], stored[c]).result())
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {passes} passes")
    for (m, t), v in seen.items():
        print(
            f"m={m:>5} KiB t={t}: CPU per check median {statistics.median(v) * 1000:5.1f} ms "
            f"(min {min(v) * 1000:5.1f})"
        )


if __name__ == "__main__":
    main()
