"""Learning models: rounds, training runs, model versions, candidate scores and proposals."""

from learning.models.candidates import CandidateScore, CandidateTile, Proposal, RoutingRecord
from learning.models.exports import ExportStatus, TrainingExport
from learning.models.rounds import Round, RoundState, RoundTrigger
from learning.models.runs import ModelVersion, RunStatus, TrainingRun

__all__ = [
    "CandidateScore",
    "CandidateTile",
    "ExportStatus",
    "ModelVersion",
    "Proposal",
    "Round",
    "RoundState",
    "RoundTrigger",
    "RoutingRecord",
    "RunStatus",
    "TrainingExport",
    "TrainingRun",
]
