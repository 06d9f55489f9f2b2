"""Data in: arrays and tensors (:mod:`.arrays`), files and tables (:mod:`.sources`,
:mod:`.tables`), their columns as model numbers (:mod:`.design`, :mod:`.categories`)."""
