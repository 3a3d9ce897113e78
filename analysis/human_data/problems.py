"""What is wrong with an import: every problem, each naming its file, row and field.

An import is all or nothing: the readers collect every problem they find (up to a cap on what is
kept; the rest are only counted) and raise `ImportProblems` once at the end, so the researcher sees
them all at once and nothing is stored.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_PROBLEMS_KEPT = 200


@dataclass(frozen=True)
class Problem:
    """One problem. file: the path inside the import ("options" for an option, None for the import
    as a whole); row: the CSV line (the header is line 1) or the 1-based row of a .mat matrix, None
    when the problem concerns a whole file; field: the column, option, variable or folder concerned."""

    file: str | None
    row: int | None
    field: str | None
    problem: str

    def as_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "field": self.field, "problem": self.problem}

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.file, f"row {self.row}" if self.row is not None else None,
                                      self.field) if p)
        return f"{where}: {self.problem}" if where else self.problem


class ProblemList:
    """Collects problems; keeps the first `keep`, counts all."""

    def __init__(self, keep: int = MAX_PROBLEMS_KEPT):
        self.kept: list[Problem] = []
        self.total = 0
        self.keep = keep

    def add(self, file: str | None, row: int | None, field: str | None, problem: str) -> None:
        self.total += 1
        if len(self.kept) < self.keep:
            self.kept.append(Problem(file, row, field, problem))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportProblems(self.kept, total=self.total)


class ImportProblems(ValueError):
    """The import is refused. `problems`: the kept problems (dicts with file, row, field, problem);
    `total`: how many were found (more than len(problems) when the cap was reached)."""

    def __init__(self, problems: list[Problem], *, total: int | None = None):
        self.total = len(problems) if total is None else total
        self.problems = [p.as_dict() for p in problems]
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {self.total - min(5, len(problems))} more)" if self.total > 5 else ""
        super().__init__(f"{self.total} problem{'s' if self.total != 1 else ''}: {shown}{more}")

    @classmethod
    def one(cls, file: str | None, row: int | None, field: str | None, problem: str) -> "ImportProblems":
        return cls([Problem(file, row, field, problem)])
