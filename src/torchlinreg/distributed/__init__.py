"""Fits spread over several processes: ``torch.distributed`` process groups (launched
with ``torchrun``) and Dask collections. See docs/distributed.md.

Imported only when a fit asks for it (``distributed=``), so that ``import
torchlinreg`` does not load ``torch.distributed``.
"""
