"""A run's history: step logs averaged into one row per logging interval, kept in ``metrics.jsonl``.

Each training step returns a dict of scalar tensors (``train/total_loss``,
``train/psnr``, ...). :class:`History` sums them on the device (no host
sync per step), and :meth:`History.row` turns the sums into one plain row of
interval averages (averaged over ranks too under torchrun), which is kept in
``rows`` and appended to ``metrics.jsonl`` when the run has an output folder.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

from vqlearn.checkpoint import write_failure
from vqlearn.runtime import is_distributed


class History:
    """Interval sums of the step logs, and the rows written so far (``rows``).

    ``path``: the ``metrics.jsonl`` to append to (None: keep rows in memory only;
    on ranks other than 0 pass None).
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self.rows: list[dict] = []
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0

    def add(self, log: dict[str, torch.Tensor], device: torch.device) -> None:
        """Add one step's log (scalar tensors) to the running interval sums."""
        for key, value in log.items():
            value = value.detach().float().to(device)
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def interval_means(self) -> dict[str, float]:
        """The averages of the interval's step logs over steps and ranks; resets the sums.

        Every rank must call it under torchrun (it all-reduces).
        """
        keys = sorted(self.sums)
        if not keys:
            return {}
        means = torch.stack([self.sums[k] for k in keys]) / max(self.steps, 1)
        if is_distributed():
            dist.all_reduce(means)
            means /= dist.get_world_size()
        self.sums, self.steps = {}, 0
        return {k: float(v) for k, v in zip(keys, means.tolist())}

    def append(self, row: dict) -> None:
        """Keep ``row`` and append it to ``metrics.jsonl``."""
        self.rows.append(row)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a") as f:
                    f.write(json.dumps(row) + "\n")
            except OSError as error:
                raise write_failure(self.path, error, "metrics file") from None

    def update_last(self, values: dict) -> None:
        """Add ``values`` to the last row, in memory and in ``metrics.jsonl``."""
        self.rows[-1].update(values)
        if self.path is not None:
            lines = self.path.read_text().splitlines()
            lines[-1] = json.dumps(self.rows[-1])
            self.path.write_text("\n".join(lines) + "\n")

    def truncate(self, step: int) -> None:
        """Resume: read the rows of ``metrics.jsonl`` up to ``step`` and drop the later ones
        (written after the checkpoint, by a run that then stopped)."""
        if self.path is None or not self.path.is_file():
            return
        rows, broken = [], []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                rows.append(row)
            else:
                broken.append(number)
        if broken:  # a line cut short by a crash mid-append
            warnings.warn(f"{self.path}: dropped {len(broken)} unreadable line(s) (line {broken[0]} first; "
                          f"a run killed while writing it?)", stacklevel=3)
        self.rows = [row for row in rows if row["step"] <= step]
        self.path.write_text("".join(json.dumps(row) + "\n" for row in self.rows))

    def state(self) -> dict:
        """The unfinished interval, for a checkpoint."""
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "steps": self.steps}

    def load_state(self, state: dict, device: torch.device) -> None:
        self.sums = {k: torch.tensor(v, device=device) for k, v in state["sums"].items()}
        self.steps = state["steps"]
