"""The exact path: the placement model in HiGHS, solved as a MILP (or as its LP relaxation).

Owns the sparse matrix of :mod:`inferfleet.core.formulation`'s rows (built with numpy, passed in one
``passModel``), the solver options that make runs reproducible (one thread, fixed seed), MIP starts,
and reading back values, objective, dual bound and status.
"""

from __future__ import annotations

import dataclasses

import highspy
import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled

__all__ = ["Layout", "MilpModel", "SolveResult", "build_model"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
INF = highspy.kHighsInf
SEED = 20240601


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each kind of variable lives in the column vector."""

    n_rep: int  # replica columns [0, n_rep)
    shed_pools: IntArray  # pools with demand; shed fraction column n_rep + i
    min_pools: IntArray  # pools with a minimum; slack column after the shed columns
    churn_rows: IntArray  # churn pairs with columns; moved-replica column after the min slack

    @property
    def shed_start(self) -> int:
        return self.n_rep

    @property
    def min_start(self) -> int:
        return self.n_rep + len(self.shed_pools)

    @property
    def churn_start(self) -> int:
        return self.min_start + len(self.min_pools)

    @property
    def n_cols(self) -> int:
        return self.churn_start + len(self.churn_rows)


@dataclasses.dataclass(frozen=True)
class SolveResult:
    values: FloatArray
    objective: float
    bound: float
    status: str  # "Optimal", "TimeLimit", "Infeasible", "Error"
    has_solution: bool


def _coo_to_csc(
    rows: IntArray, cols: IntArray, vals: FloatArray, n_cols: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], FloatArray]:
    order = np.lexsort((rows, cols))
    cols_s = cols[order]
    start = np.zeros(n_cols + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols_s, minlength=n_cols), out=start[1:])
    return start, rows[order].astype(np.int32), vals[order]


class MilpModel:
    """One HiGHS instance holding the placement model; objectives and level rows change per phase."""

    def __init__(self, comp: Compiled) -> None:
        self.comp = comp
        self.layout, lp = build_model(comp)
        self.highs = highspy.Highs()
        h = self.highs
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("random_seed", SEED)
        h.setOptionValue("mip_rel_gap", 1e-4)
        h.passModel(lp)
        self.integrality = lp.integrality_

    def set_costs(self, costs: FloatArray) -> None:
        idx = np.arange(len(costs), dtype=np.int32)
        self.highs.changeColsCost(len(costs), idx, costs.astype(np.float64))

    def add_row(self, cols: IntArray, vals: FloatArray, lower: float, upper: float) -> None:
        self.highs.addRow(lower, upper, len(cols), cols.astype(np.int32), vals.astype(np.float64))

    def full_vector(self, n: FloatArray) -> FloatArray:
        """Replica counts plus the shed, minimum-slack and churn columns they imply."""
        comp, lay = self.comp, self.layout
        x = np.zeros(lay.n_cols, dtype=np.float64)
        x[: lay.n_rep] = n
        served = np.bincount(comp.col_pool, weights=n * comp.rps, minlength=comp.n_pools)
        count = np.bincount(comp.col_pool, weights=n, minlength=comp.n_pools)
        sp = lay.shed_pools
        x[lay.shed_start : lay.min_start] = np.clip(1.0 - served[sp] / comp.need[sp], 0.0, 1.0)
        mp = lay.min_pools
        x[lay.min_start : lay.churn_start] = np.maximum(comp.min_r[mp] - count[mp], 0.0)
        if len(lay.churn_rows):
            key = comp.col_pool * len(comp.class_names) + comp.col_class
            on = np.bincount(key, weights=n, minlength=comp.n_pools * len(comp.class_names))
            cr = lay.churn_rows
            ck = comp.churn_pool[cr] * len(comp.class_names) + comp.churn_class[cr]
            x[lay.churn_start :] = np.maximum(comp.churn_current[cr] - on[ck], 0.0)
        return x

    def run(self, time_limit: float, start: FloatArray | None, *, relax: bool = False) -> SolveResult:
        h = self.highs
        h.setOptionValue("time_limit", max(time_limit, 0.01))
        if relax:
            h.changeColsIntegrality(
                self.layout.n_rep,
                np.arange(self.layout.n_rep, dtype=np.int32),
                np.full(self.layout.n_rep, highspy.HighsVarType.kContinuous),
            )
        elif start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(start)
            h.setSolution(sol)
        h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        solution = h.getSolution()
        has = bool(info.primal_solution_status == highspy.kSolutionStatusFeasible)
        values = np.array(solution.col_value, dtype=np.float64) if has else np.zeros(0)
        if relax:
            h.changeColsIntegrality(
                self.layout.n_rep,
                np.arange(self.layout.n_rep, dtype=np.int32),
                np.full(self.layout.n_rep, highspy.HighsVarType.kInteger),
            )
            bound = float(info.objective_function_value) if has else -INF
        else:
            bound = float(info.mip_dual_bound)
        name = {
            highspy.HighsModelStatus.kOptimal: "Optimal",
            highspy.HighsModelStatus.kTimeLimit: "TimeLimit",
            highspy.HighsModelStatus.kInfeasible: "Infeasible",
        }.get(status, "Error")
        objective = float(info.objective_function_value) if has else INF
        return SolveResult(values, objective, bound, name, has)


def build_model(comp: Compiled) -> tuple[Layout, highspy.HighsLp]:
    """All rows of the model with a zero objective (phases set their own costs)."""
    n_rep = comp.n_cols
    shed_pools = np.flatnonzero(comp.need > 0)
    min_pools = np.flatnonzero(comp.min_r > 0)
    churn_rows = np.flatnonzero(comp.churn_has_cols)
    lay = Layout(n_rep, shed_pools, min_pools, churn_rows)
    cp, cc = comp.col_pool, comp.col_class
    j_all = np.arange(n_rep, dtype=np.int64)
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    lower: list[FloatArray] = []
    upper: list[FloatArray] = []
    n_rows = 0

    def block(r: IntArray, c: IntArray, v: FloatArray, lo: FloatArray, hi: FloatArray) -> None:
        nonlocal n_rows
        rows.append(r + n_rows)
        cols.append(c)
        vals.append(v)
        lower.append(lo)
        upper.append(hi)
        n_rows += len(lo)

    # demand: sum rps/need * n + f >= 1
    row_of = np.full(comp.n_pools, -1, dtype=np.int64)
    row_of[shed_pools] = np.arange(len(shed_pools))
    sel = row_of[cp] >= 0
    k = len(shed_pools)
    block(
        np.concatenate([row_of[cp][sel], np.arange(k)]),
        np.concatenate([j_all[sel], lay.shed_start + np.arange(k)]),
        np.concatenate([comp.rps[sel] / comp.need[cp][sel], np.ones(k)]),
        np.ones(k),
        np.full(k, INF),
    )
    # minimum replicas: sum n + u >= min
    row_of[:] = -1
    row_of[min_pools] = np.arange(len(min_pools))
    sel = row_of[cp] >= 0
    k = len(min_pools)
    block(
        np.concatenate([row_of[cp][sel], np.arange(k)]),
        np.concatenate([j_all[sel], lay.min_start + np.arange(k)]),
        np.ones(int(sel.sum()) + k),
        comp.min_r[min_pools],
        np.full(k, INF),
    )
    # maximum replicas, where it can bind
    ub_sum = np.bincount(cp, weights=comp.ub, minlength=comp.n_pools)
    max_pools = np.flatnonzero(ub_sum > comp.max_r)
    row_of[:] = -1
    row_of[max_pools] = np.arange(len(max_pools))
    sel = row_of[cp] >= 0
    k = len(max_pools)
    block(row_of[cp][sel], j_all[sel], np.ones(int(sel.sum())), np.full(k, -INF), comp.max_r[max_pools])
    # churn: sum_{class} n + m >= current
    if len(churn_rows):
        n_cls = len(comp.class_names)
        pair_key = comp.churn_pool[churn_rows] * n_cls + comp.churn_class[churn_rows]
        order = np.argsort(pair_key)
        col_key = cp * n_cls + cc
        pos = np.searchsorted(pair_key[order], col_key)
        pos_c = np.minimum(pos, len(order) - 1)
        sel = pair_key[order][pos_c] == col_key
        k = len(churn_rows)
        block(
            np.concatenate([order[pos_c[sel]], np.arange(k)]),
            np.concatenate([j_all[sel], lay.churn_start + np.arange(k)]),
            np.ones(int(sel.sum()) + k),
            comp.churn_current[churn_rows],
            np.full(k, INF),
        )
    # node capacity thresholds
    for cap in comp.capacity_rows:
        sel = (cc == cap.cls) & (comp.devices >= cap.size) & (comp.ub > 0)
        block(
            np.zeros(int(sel.sum()), dtype=np.int64),
            j_all[sel],
            comp.devices[sel],
            np.array([-INF]),
            np.array([cap.rhs]),
        )
    # power per budgeted domain
    dom = comp.class_domain[cc] if n_rep else np.zeros(0, dtype=np.int64)
    for d, budget in enumerate(comp.budgets):
        sel = dom == d
        block(np.full(int(sel.sum()), 0, dtype=np.int64), j_all[sel], comp.watts[sel], np.array([-INF]),
              np.array([float(budget)]))

    lp = highspy.HighsLp()
    lp.num_col_ = lay.n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = np.zeros(lay.n_cols)
    lp.col_lower_ = np.zeros(lay.n_cols)
    col_upper = np.concatenate(
        [
            comp.ub,
            np.ones(len(shed_pools)),
            comp.min_r[min_pools],
            comp.churn_current[churn_rows],
        ]
    )
    lp.col_upper_ = col_upper
    lp.row_lower_ = np.concatenate(lower) if lower else np.zeros(0)
    lp.row_upper_ = np.concatenate(upper) if upper else np.zeros(0)
    start, index, value = _coo_to_csc(
        np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64),
        np.concatenate(vals) if vals else np.zeros(0),
        lay.n_cols,
    )
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_rep + [highspy.HighsVarType.kContinuous] * (
        lay.n_cols - n_rep
    )
    return lay, lp
