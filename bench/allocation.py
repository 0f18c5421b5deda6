"""Suggested-allocation benchmark: 34 provinces, 2,000 facilities, 200 suppliers.

Prints the LP's solve time and urgency-weighted unmet need side by side with a greedy
nearest-supplier heuristic on the same generated scenarios.
Run: `.venv/bin/python bench/allocation.py`.
"""

from __future__ import annotations

import random
import statistics
import time

from api.coordination.allocation import Need, Supply, allocate, greedy

# Rough centres of the 34 provinces' territory, south to north, for scattering points.
LAT_RANGE = (8.6, 23.3)
LON_RANGE = (102.2, 109.4)


def scenario(seed: int, n_fac: int = 2000, n_sup: int = 200) -> tuple[list[Need], list[Supply]]:
    """A crisis-sized random country: needs exceed supply by about 15%, reach 250-600 km."""
    rng = random.Random(seed)
    provinces = [f"{i:02d}" for i in range(34)]
    centres = [(rng.uniform(*LAT_RANGE), rng.uniform(*LON_RANGE)) for _ in provinces]

    def near(k: int) -> tuple[float, float]:
        lat, lon = centres[k]
        return lat + rng.gauss(0, 0.35), lon + rng.gauss(0, 0.35)

    needs = []
    for f in range(n_fac):
        k = rng.randrange(34)
        lat, lon = near(k)
        daily = rng.lognormvariate(6.5, 0.8)  # ~665 kg/day median
        stock = daily * rng.uniform(0.0, 6.0)
        cap = max(stock * 1.2, daily * 8)
        target = daily * 5
        needs.append(
            Need(
                f,
                f"F{f}",
                provinces[k],
                lat,
                lon,
                max(target - stock, 0.0),
                cap - stock,
                stock / daily,
                3.0,
            )
        )
    total_need = sum(n.need_kg for n in needs)
    sups = []
    for s in range(n_sup):
        k = rng.randrange(34)
        lat, lon = near(k)
        sups.append(
            Supply(10_000 + s, f"S{s}", provinces[k], lat, lon, 1.0, max_km=rng.uniform(250, 600))
        )
    weights = [rng.lognormvariate(0, 0.7) for _ in sups]
    scale = total_need / 1.15 / sum(weights)
    sups = [
        Supply(s.supplier_id, s.name, s.province, s.lat, s.lon, w * scale, max_km=s.max_km)
        for s, w in zip(sups, weights, strict=True)
    ]
    return needs, sups


def main() -> None:
    """Run five scenarios and print the comparison."""
    print(
        f"{'seed':>4} {'LP s':>7} {'greedy s':>8} {'LP unmet(w)':>14} {'greedy unmet(w)':>16} "
        f"{'LP unmet t':>10} {'greedy unmet t':>14} {'better':>7}"
    )
    times = []
    for seed in range(5):
        needs, sups = scenario(seed)
        t0 = time.perf_counter()
        lp = allocate(needs, sups)
        t1 = time.perf_counter()
        gr = greedy(needs, sups)
        t2 = time.perf_counter()
        times.append(t1 - t0)
        print(
            f"{seed:>4} {t1 - t0:>7.2f} {t2 - t1:>8.2f} {lp.unmet_weighted:>14,.0f} "
            f"{gr.unmet_weighted:>16,.0f} {lp.unmet_kg / 1000:>10,.1f} "
            f"{gr.unmet_kg / 1000:>14,.1f} "
            f"{'yes' if lp.unmet_weighted < gr.unmet_weighted else 'NO':>7}"
        )
    print(
        f"LP solve time: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
        "(target < 2 s)"
    )


if __name__ == "__main__":
    main()
