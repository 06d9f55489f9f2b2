"""Exact least squares: one mergeable state (:mod:`.state`), solved (:mod:`.solve`) and,
where accuracy is at risk, refined in extended precision (:mod:`.refine`)."""
