"""What the simulated people do, over HTTP only: students annotate, experts adjudicate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from annotation.rasterize import grid_shape, rasterize_shapes
from learning.simulation.client import Client
from learning.simulation.drawing import draw_shapes
from learning.simulation.metrics import dice
from learning.simulation.profiles import Person
from learning.simulation.truth import GroundTruth

logger = logging.getLogger(__name__)

ACCEPT_DICE = 0.85  # an expert accepts a consensus this close to their own outline


@dataclass
class Crowd:
    """The people of one campaign with their sessions and seeded hands."""

    project_id: int
    classes: list[str]  # drawing classes in painting order
    class_ids: dict[str, int]  # name -> LabelClass id
    downsample: dict[int, float]  # slide id -> level-0 px per working px
    truth: dict[int, GroundTruth]  # slide id -> truth
    students: list[tuple[Person, Client]]
    experts: list[tuple[Person, Client]]
    rng: np.random.Generator
    submitted: int = 0
    adjudicated: dict[str, int] = field(default_factory=dict)

    def _draw(self, person: Person, region: dict) -> list[dict]:
        box = (region["x"], region["y"], region["width"], region["height"])
        found = self.truth[region["slide"]].shapes_in(*box)
        shapes = draw_shapes(found, box, person, self.classes, self.rng)
        return [{"label_class": self.class_ids[n], "geometry": g} for n, g in shapes]

    def _annotate(self, person: Person, client: Client, assignment: dict) -> None:
        """Open the work, autosave the draft with If-Match, then submit with the new ETag."""
        path = f"/api/assignments/{assignment['id']}/work/"
        etag = client.call("GET", path).headers["ETag"]
        shapes = self._draw(person, assignment["region"])
        saved = client.call(
            "PUT",
            path,
            {"shapes": shapes, "time_spent_seconds": float(self.rng.uniform(30, 300))},
            headers={"If-Match": etag},
        )
        client.post(
            f"/api/assignments/{assignment['id']}/submit/",
            {"outcome": "shapes" if shapes else "nothing"},
            headers={"If-Match": saved.headers["ETag"]},
        )
        self.submitted += 1

    def students_pass(self, check: Callable[[], None]) -> int:
        """Students take turns asking for their next region until nobody gets one."""
        done = 0
        while True:
            worked = 0
            order = self.rng.permutation(len(self.students))
            for i in order:
                person, client = self.students[int(i)]
                reply = client.post(
                    f"/api/projects/{self.project_id}/next-region/", ok=(200, 204, 409)
                )
                if reply.status != 200:
                    continue
                self._annotate(person, client, reply.data)
                worked += 1
            check()
            done += worked
            if not worked:
                return done

    def _grid_mask(self, shapes: list[dict], region: dict) -> np.ndarray:
        index = {cid: i + 1 for i, cid in enumerate(self.class_ids[c] for c in self.classes)}
        downsample = self.downsample[region["slide"]]
        shape = grid_shape(region["width"], region["height"], downsample)
        return rasterize_shapes(
            [(index[s["label_class"]], s["geometry"]) for s in shapes if s["label_class"] in index],
            origin=(region["x"], region["y"]),
            shape=shape,
            downsample=downsample,
        )

    def experts_pass(self) -> int:
        """Experts work the adjudication queue: accept a close consensus, else redraw it."""
        if not self.experts:
            return 0
        _, first = self.experts[0]
        queue = first.get(f"/api/projects/{self.project_id}/adjudication-queue/") or []
        for n, entry in enumerate(queue):
            person, client = self.experts[n % len(self.experts)]
            region = client.get(f"/api/regions/{entry['region']}/")
            current = (client.get(f"/api/regions/{entry['region']}/consensus/") or {}).get(
                "current"
            )
            own = self._draw(person, region)
            agree = float("nan")
            if current is not None:
                ours = self._grid_mask(own, region)
                theirs = self._grid_mask(current.get("polygons") or [], region)
                agree = dice(ours, theirs, len(self.classes) + 1)
            both_empty = not own and not (current or {}).get("polygons")
            if current is not None and (agree >= ACCEPT_DICE or both_empty):
                body = {"decision": "accept", "reason": f"matches my outline (Dice {agree:.2f})"}
            else:
                body = {
                    "decision": "redraw",
                    "reason": "consensus misses the objects",
                    "shapes": own,
                }
            client.post(f"/api/regions/{entry['region']}/adjudication/", body)
            self.adjudicated[person.username] = self.adjudicated.get(person.username, 0) + 1
        return len(queue)


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start
