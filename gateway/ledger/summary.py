"""Bags and weight per day or month, department and category: the ledger's summaries.

What counts is what was handed over and not voided (``ledger_bags.type = 'handover' AND voided_by
IS NULL``): a bag is counted once, at its handover, whatever happened to it after.  Days are the
ledger zone's (``ledger_bags.day``, written with the index), so a day adds up the same whatever
zone a cart's clock was in; the console's page, its chart and the exports all read this function.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gateway.ledger.search import BAG_PREFIX_END, LedgerFilter, ledger_zone
from gateway.ledger.zone import day_of

Period = Literal["day", "month"]
PERIODS: tuple[Period, ...] = ("day", "month")


@dataclass(frozen=True)
class SummaryRow:
    period: str  # YYYY-MM-DD or YYYY-MM
    department: str | None
    category: str | None
    bags: int
    weight_g: int


def summarize(db: sqlite3.Connection, f: LedgerFilter, by: Period) -> list[SummaryRow]:
    """One row per (period, department, category) with bags, ordered by those three."""
    if by not in PERIODS:
        raise ValueError(f"by: {by!r} is not one of {', '.join(PERIODS)}")
    if f.type not in (None, "handover"):
        return []  # only handovers are counted
    conds = ["b.type = 'handover'", "b.voided_by IS NULL"]
    args: list[object] = []
    tz = ledger_zone(db)
    if f.since is not None:  # the day bound lets ledger_bags_summary range-scan; ``at`` keeps an odd hour exact
        conds += ["b.day >= ?", "b.at >= ?"]
        args += [day_of(f.since, tz), f.since]
    if f.until is not None:
        conds += ["b.day <= ?", "b.at < ?"]
        args += [day_of(f.until, tz), f.until]
    for name in ("cart", "department", "category"):
        value = getattr(f, name)
        if value:
            conds.append(f"b.{name} = ?")
            args.append(value)
    if f.bag:
        conds.append("b.package_code >= ? AND b.package_code < ?")
        args += [f.bag, f.bag + BAG_PREFIX_END]
    join = ""
    if f.collector or f.confirmer:
        join = " JOIN ledger_records r ON r.id = b.record_id"
        for name in ("collector", "confirmer"):
            value = getattr(f, name)
            if value:
                conds.append(f"r.{name} = ?")
                args.append(value)
    period = "b.day" if by == "day" else "substr(b.day, 1, 7)"
    sql = (f"SELECT {period} AS p, b.department, b.category, COUNT(*), COALESCE(SUM(b.weight_g), 0)"
           f" FROM ledger_bags b{join} WHERE {' AND '.join(conds)}"
           " GROUP BY p, b.department, b.category ORDER BY p, b.department, b.category")
    return [SummaryRow(p, dept, cat, int(n), int(g)) for p, dept, cat, n, g in db.execute(sql, args)]


def totals(rows: Iterable[SummaryRow]) -> tuple[int, int]:
    """(bags, weight_g) of all the rows."""
    bags = grams = 0
    for row in rows:
        bags += row.bags
        grams += row.weight_g
    return bags, grams


def per_period(rows: Iterable[SummaryRow]) -> list[tuple[str, int, int]]:
    """[(period, bags, weight_g)] in period order: what the chart draws."""
    out: dict[str, list[int]] = {}
    for row in rows:
        acc = out.setdefault(row.period, [0, 0])
        acc[0] += row.bags
        acc[1] += row.weight_g
    return [(p, b, g) for p, (b, g) in sorted(out.items())]
