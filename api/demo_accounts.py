"""One demo account per role for `oxy demo`, with passwords generated per data directory.

Nothing secret is in the repository: each machine's demo gets its own random passwords, kept in
`<data dir>/demo/logins.txt` (mode 0600) so a second run shows the same ones.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from psycopg import AsyncConnection

from api.scope import Role
from api.users import NewUser, create_user

# username, role, organisation code, national engineer, display name
DEMO_ACCOUNTS: tuple[tuple[str, Role, str | None, bool, str], ...] = (
    ("admin", Role.ADMIN, None, False, "Quản trị hệ thống"),
    ("byt", Role.BYT, "BYT", False, "Cán bộ Bộ Y tế"),
    ("syt-hcm", Role.SYT, "SYT-79", False, "Cán bộ Sở Y tế TP.HCM"),
    ("syt-hanoi", Role.SYT, "SYT-01", False, "Cán bộ Sở Y tế Hà Nội"),
    ("choray", Role.FACILITY, "BV-CHORAY", False, "Phòng Vật tư BV Chợ Rẫy"),
    ("ncc-miennam", Role.SUPPLIER, "NCC-KHIMIENNAM", False, "Điều độ Khí công nghiệp Miền Nam"),
    ("kysu", Role.ENGINEER, None, True, "Kỹ sư vận hành"),
)


def _passwords(path: Path) -> dict[str, str]:
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            user, _, password = line.partition(" ")
            if user and password:
                known[user] = password
    changed = False
    for username, *_ in DEMO_ACCOUNTS:
        if username not in known:
            known[username] = "demo-" + secrets.token_urlsafe(9)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(f"{u} {p}\n" for u, p in known.items())
    return known


async def _seed(db_url: str, passwords: dict[str, str]) -> None:
    async with await AsyncConnection.connect(db_url) as conn:
        for username, role, org, national, name in DEMO_ACCOUNTS:
            cur = await conn.execute("SELECT 1 FROM users WHERE username = %s", (username,))
            if await cur.fetchone():
                continue
            await create_user(
                conn,
                "oxy demo",
                NewUser(username, name, role, passwords[username], org, national=national),
            )
            # A demo account is for looking around: no forced password change at first login.
            await conn.execute(
                "UPDATE users SET must_change_password = false WHERE username = %s", (username,)
            )
        await conn.commit()


def seed_demo_accounts(db_url: str, workdir: Path) -> list[tuple[str, str, str]]:
    """Create the demo accounts if missing; return (username, password, role) for the banner."""
    passwords = _passwords(workdir / "logins.txt")
    asyncio.run(_seed(db_url, passwords))
    return [(u, passwords[u], role.value) for u, role, *_ in DEMO_ACCOUNTS]
