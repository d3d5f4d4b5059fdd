"""The one door to HiGHS: every use of ``highspy`` in the project goes through this module.

Owns the model format handed to the solver (:class:`SparseModel`, a column-wise sparse program in
plain numpy, so model surgery such as fixing columns never touches highspy objects), the solver
instance (:class:`Solver`: options, model changes, runs with a MIP start, read-back of status,
values, objective and dual bound) and keeping HiGHS off the console.

Silence.  HiGHS prints its banner ("Running HiGHS ...") on the first non-const call to an instance
whose ``output_flag`` is still true, and highspy's ``Highs()`` makes such a call
(``enableCallbacks``) inside its constructor, before any option can be set (upstream
ERGO-Code/HiGHS#2749 and #1702: the supported rule is "set output_flag false before calling any
method", which highspy's constructor leaves no room for).  So the constructor runs with file
descriptors 1 and 2 pointed at /dev/null and ``output_flag`` is set false before they are restored.
(HiGHS 1.16 writes the banner once per process, so in practice only the first construction has
anything to hide; every construction is covered all the same, since that is HiGHS's detail.)
Swapping descriptors is process-wide: one lock serialises it, so concurrent constructions cannot
restore each other's /dev/null; what another thread writes to fd 1 or 2 inside that window (a
fraction of a millisecond, a handful of times per plan) is lost, and Python's and C's buffers are
flushed before it opens so that nothing written earlier is.
Everything after construction (presolve, simplex, MIP log, callbacks) is silent by ``output_flag``
alone; ``tests/unit/core/test_highs.py`` checks that at the descriptor level.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import os
import sys
import threading
from collections.abc import Iterator

import highspy
import numpy as np
import numpy.typing as npt

__all__ = ["INF", "OptionValue", "RunResult", "Solver", "SparseModel"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
OptionValue = bool | int | float | str
INF = float(highspy.kHighsInf)

_STATUS = {
    highspy.HighsModelStatus.kOptimal: "Optimal",
    highspy.HighsModelStatus.kTimeLimit: "TimeLimit",
    highspy.HighsModelStatus.kInfeasible: "Infeasible",
}
_CONSOLE = threading.Lock()  # held while fd 1 and 2 point at /dev/null


@dataclasses.dataclass(frozen=True)
class SparseModel:
    """A linear (or mixed-integer) program, columns in compressed sparse column form.

    Column ``j``'s entries are ``index[start[j]:start[j + 1]]`` (rows) and the same slice of
    ``value``.  ``n_int`` is ``None`` for an LP; otherwise the first ``n_int`` columns are integer
    and the rest continuous.
    """

    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    start: IntArray
    index: IntArray
    value: FloatArray
    n_int: int | None = None

    @property
    def n_cols(self) -> int:
        return len(self.col_lower)

    @property
    def n_rows(self) -> int:
        return len(self.row_lower)

    def col_of_entry(self) -> IntArray:
        """The column of each entry of ``index``/``value``."""
        return np.repeat(np.arange(self.n_cols, dtype=np.int64), np.diff(self.start))

    def _to_highs(self) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = self.n_rows
        lp.col_cost_ = np.asarray(self.col_cost, dtype=np.float64)
        lp.col_lower_ = np.asarray(self.col_lower, dtype=np.float64)
        lp.col_upper_ = np.asarray(self.col_upper, dtype=np.float64)
        lp.row_lower_ = np.asarray(self.row_lower, dtype=np.float64)
        lp.row_upper_ = np.asarray(self.row_upper, dtype=np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.asarray(self.start).astype(np.int32)
        lp.a_matrix_.index_ = np.asarray(self.index).astype(np.int32)
        lp.a_matrix_.value_ = np.asarray(self.value, dtype=np.float64)
        if self.n_int is not None:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * self.n_int + [
                highspy.HighsVarType.kContinuous
            ] * (self.n_cols - self.n_int)
        return lp


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one run left: a status, and values and objective when it has a feasible point."""

    status: str  # "Optimal", "TimeLimit", "Infeasible", "Error"
    values: FloatArray  # empty without a primal feasible solution
    objective: float  # INF without one
    mip_dual_bound: float  # HiGHS's dual bound of a MIP (meaningless for an LP)

    @property
    def ok(self) -> bool:
        return len(self.values) > 0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except (OSError, TypeError):  # no C library to flush (not on a POSIX system)
        return None


def _flush_c_streams() -> None:
    """Flush C stdio buffers (a library's buffered console output lands where fd 1/2 point now)."""
    libc = _libc()
    if libc is not None:
        libc.fflush(None)


@contextlib.contextmanager
def _console_to_devnull() -> Iterator[None]:
    """File descriptors 1 and 2 on /dev/null for the duration (process-wide, under ``_CONSOLE``)."""
    with _CONSOLE:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        _flush_c_streams()
        saved: dict[int, int | None] = {}
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in (1, 2):
                try:
                    saved[fd] = os.dup(fd)
                except OSError:  # closed: restored to closed below
                    saved[fd] = None
                os.dup2(null, fd)
            yield
        finally:
            _flush_c_streams()
            for fd, copy in saved.items():
                if copy is None:
                    os.close(fd)
                else:
                    os.dup2(copy, fd)
                    os.close(copy)
            os.close(null)


class Solver:
    """One HiGHS instance, silent from its construction on."""

    def __init__(self, options: dict[str, OptionValue] | None = None) -> None:
        with _console_to_devnull():
            self._h = highspy.Highs()  # type: ignore[no-untyped-call]
            self._h.setOptionValue("output_flag", False)
        self._mip = False  # whether the model passed has integer columns (how HiGHS times a run)
        for name, value in (options or {}).items():
            self.set_option(name, value)

    def set_option(self, name: str, value: OptionValue) -> None:
        self._h.setOptionValue(name, value)

    # highspy's spelling, for callers that set options as they would on a highspy.Highs

    def pass_model(self, model: SparseModel) -> None:
        self._mip = bool(model.n_int)
        self._h.passModel(model._to_highs())

    def change_costs(self, cols: IntArray, costs: FloatArray) -> None:
        self._h.changeColsCost(
            len(cols), np.asarray(cols).astype(np.int32), np.ascontiguousarray(costs, dtype=np.float64)
        )

    def change_col_bounds(self, cols: IntArray, lower: FloatArray, upper: FloatArray) -> None:
        self._h.changeColsBounds(
            len(cols),
            np.asarray(cols).astype(np.int32),
            np.asarray(lower, dtype=np.float64),
            np.asarray(upper, dtype=np.float64),
        )

    def change_row_bounds(self, row: int, lower: float, upper: float) -> None:
        self._h.changeRowBounds(row, lower, upper)

    def add_rows(
        self, lower: FloatArray, upper: FloatArray, start: IntArray, index: IntArray, value: FloatArray
    ) -> None:
        """Rows in compressed sparse row form (row ``i``'s entries start at ``start[i]``)."""
        self._h.addRows(
            len(lower),
            lower,
            upper,
            len(index),
            start.astype(np.int32),
            index.astype(np.int32),
            value.astype(np.float64),
        )

    def row_duals(self) -> FloatArray:
        """The rows' dual values of the last LP solved (HiGHS's signs: minimisation)."""
        return np.array(self._h.getSolution().row_dual, dtype=np.float64)

    def run(self, time_limit: float, start: FloatArray | None = None) -> RunResult:
        """Run for at most ``time_limit`` more seconds, from the MIP start ``start`` when given."""
        h = self._h
        # HiGHS 1.16 (the pinned version) times a MIP's run on its own but an LP's against every
        # run of the instance so far (getRunTime()); test_highs checks both, since a limit counted
        # the wrong way gives a run all the earlier runs' time or none
        base = 0.0 if self._mip else h.getRunTime()
        h.setOptionValue("time_limit", base + max(time_limit, 0.001))
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = start
            h.setSolution(sol)
        h.run()
        info = h.getInfo()
        has = info.primal_solution_status == highspy.kSolutionStatusFeasible
        return RunResult(
            status=_STATUS.get(h.getModelStatus(), "Error"),
            values=np.array(h.getSolution().col_value, dtype=np.float64) if has else np.zeros(0),
            objective=float(info.objective_function_value) if has else INF,
            mip_dual_bound=float(info.mip_dual_bound),
        )
