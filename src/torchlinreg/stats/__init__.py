"""Statistics of fitted models: metrics (:mod:`.metrics`)."""
