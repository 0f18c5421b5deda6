"""CPU time of one argon2id verification for each of OWASP's equivalent minimum configurations
(p = 1) and each implementation the platform could use, as the server runs it: in a worker
thread, passes interleaved so that a change in the machine's load hits every configuration and
implementation alike (docs/security.md, "Password hashing cost").

* `libsodium` — PyNaCl's bundled libsodium (`crypto_pwhash_argon2id_str_verify`): picks AVX-512F,
  AVX2 or SSSE3 kernels at run time; maps each check's memory fresh (mmap) and unmaps it after.
* `argon2-cffi` — argon2-cffi-bindings' bundled reference library, built from PyPI's x86-64
  wheels with its SSE2 kernel (`opt.c`, no SSSE3/AVX2); its memory comes from malloc.

Both read and write the same PHC string (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`): each verifies
a hash made by the other. CPU is this thread's (time.thread_time: user + system, so the page
faults of a fresh mapping count), per check, over CHECKS_PER_PASS × passes checks (≥ 200 with
the default 10 passes); the user/system split and the minor page faults per check come from
getrusage(RUSAGE_THREAD).

Run: .venv/bin/python bench/argon2_params.py [passes]
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nacl.pwhash.argon2id as sodium_argon2id
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from nacl.exceptions import InvalidkeyError

# OWASP password storage cheat sheet: (memory KiB, iterations), parallelism 1.
CONFIGS = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)]
IMPLEMENTATIONS = ["libsodium", "argon2-cffi"]
CHECKS_PER_PASS = 20
PASSWORD = b"bench-password-1"
WRONG = b"a wrong password"


@dataclass
class Seen:
    """Per-pass CPU per check (s), and totals over every pass."""

    cpu: list[float] = field(default_factory=list)
    user_s: float = 0.0
    sys_s: float = 0.0
    faults: int = 0
    checks: int = 0


def _verifier(impl: str, stored: str) -> Callable[[], None]:
    """One failing verification of `stored` with `impl`."""
    if impl == "libsodium":
        encoded = stored.encode()
        return lambda: sodium_argon2id.verify(encoded, WRONG)
    hasher = PasswordHasher()  # verification reads the parameters from the hash
    wrong = WRONG.decode()
    return lambda: hasher.verify(stored, wrong)


def one_pass(check: Callable[[], None]) -> tuple[float, float, float, int]:
    """CPU seconds of this thread per check; user s, system s and minor faults in all."""
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    t0 = time.thread_time()
    for _ in range(CHECKS_PER_PASS):
        with contextlib.suppress(VerifyMismatchError, InvalidkeyError):
            check()
    took = time.thread_time() - t0
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    return (
        took / CHECKS_PER_PASS,
        r1.ru_utime - r0.ru_utime,
        r1.ru_stime - r0.ru_stime,
        r1.ru_minflt - r0.ru_minflt,
    )


def main() -> None:
    """Interleaved passes; per configuration and implementation the mean and median CPU."""
    passes = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    # Stored hashes made by argon2-cffi (as the platform stored them so far); libsodium verifies
    # them as they are.
    stored = {
        c: PasswordHasher(memory_cost=c[0], time_cost=c[1], parallelism=1).hash(PASSWORD)
        for c in CONFIGS
    }
    checks = {(c, i): _verifier(i, stored[c]) for c in CONFIGS for i in IMPLEMENTATIONS}
    seen = {key: Seen() for key in checks}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1) as worker:
        worker.submit(lambda: [check() for check in checks.values()])  # first-call costs
        for _ in range(passes):
            for key, check in checks.items():
                cpu, user_s, sys_s, faults = worker.submit(one_pass, check).result()
                s = seen[key]
                s.cpu.append(cpu)
                s.user_s += user_s
                s.sys_s += sys_s
                s.faults += faults
                s.checks += CHECKS_PER_PASS
    print(
        f"{os.cpu_count()} CPUs, load {load0:.1f} → {os.getloadavg()[0]:.1f}, {passes} passes of "
        f"{CHECKS_PER_PASS} checks ({passes * CHECKS_PER_PASS} per row), "
        f"{time.perf_counter() - t0:.0f} s"
    )
    print("m KiB, t  implementation  CPU/check mean  median (min)   user  sys  minor faults/check")
    for c in CONFIGS:
        for i in IMPLEMENTATIONS:
            s = seen[(c, i)]
            n = s.checks
            print(
                f"{c[0]:>5}, {c[1]}  {i:<14}  {statistics.fmean(s.cpu) * 1000:7.2f} ms  "
                f"{statistics.median(s.cpu) * 1000:6.2f} ({min(s.cpu) * 1000:5.2f})  "
                f"{s.user_s / n * 1000:6.2f} {s.sys_s / n * 1000:5.2f}  {s.faults / n:8.0f}"
            )
        ratio = statistics.fmean(seen[(c, "argon2-cffi")].cpu) / statistics.fmean(
            seen[(c, "libsodium")].cpu
        )
        print(f"          argon2-cffi / libsodium: {ratio:.2f}x")


if __name__ == "__main__":
    main()
