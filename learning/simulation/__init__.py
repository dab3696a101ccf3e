"""The campaign simulator: a simulated crowd drives the real system end to end.

Pure parts (no Django): ``profiles`` (scales and simulated people), ``drawing`` (polygons
from the ground truth, distorted by a person's profile), ``metrics`` (Dice, rank correlation)
and ``report`` (Markdown and PNG plots). The Django-side driver lives in ``campaign``,
``live`` (its own web server and Celery worker) and ``rounds`` (the learning rounds, over HTTP);
the command is ``manage.py simulate_campaign``.
"""
