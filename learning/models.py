"""Learning models (model versions, training runs, proposals) arrive with the rounds issue."""
