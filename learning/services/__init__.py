"""Learning services: training data, training runs, scoring, proposals and the round machine."""
