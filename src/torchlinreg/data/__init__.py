"""Data in: arrays and tensors (:mod:`.arrays`), CSV files (:mod:`.csv`)."""
