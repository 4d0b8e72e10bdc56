"""Classroom exercises: labs/NN-slug/, graded on the learner's own work in real labs.

An exercise's `exercise.py` uses only what is imported here and the lab API:

    from vpclab.classroom import Failed, Variant, check

and, for an exercise that runs the learner's code, `vpclab.classroom.learner_events` (what
that code did, from the mapping service's events).
"""
from vpclab.classroom.checks import CheckContext, Failed, Report, check
from vpclab.classroom.variant import Variant

__all__ = ["CheckContext", "Failed", "Report", "Variant", "check"]
