"""Annotation models: projects and roles, campaign set-up, regions, assignments, annotations."""

from annotation.models.adjudication import Adjudication, AdjudicationDecision
from annotation.models.consensus import (
    AnnotatorReliability,
    ConsensusJob,
    ConsensusRun,
    ConsensusStatus,
    ReliabilitySource,
)
from annotation.models.login import LoginCounter
from annotation.models.project_slides import ProjectSlide
from annotation.models.projects import (
    CampaignState,
    GuidelineImage,
    LabelClass,
    Membership,
    Project,
    Role,
)
from annotation.models.regions import Region, RegionOrigin, RegionStatus
from annotation.models.work import (
    Assignment,
    AssignmentStatus,
    Outcome,
    Shape,
    SlideAnnotation,
    Submission,
    SubmissionHistory,
    SubmissionStatus,
)

__all__ = [
    "Adjudication",
    "AdjudicationDecision",
    "AnnotatorReliability",
    "ConsensusJob",
    "ConsensusRun",
    "ConsensusStatus",
    "ReliabilitySource",
    "Assignment",
    "AssignmentStatus",
    "CampaignState",
    "GuidelineImage",
    "LabelClass",
    "LoginCounter",
    "Membership",
    "Outcome",
    "Project",
    "ProjectSlide",
    "Region",
    "RegionOrigin",
    "RegionStatus",
    "Role",
    "Shape",
    "SlideAnnotation",
    "Submission",
    "SubmissionHistory",
    "SubmissionStatus",
]
