"""Example models for `python3 -m train.export_model` (docs/IMPORT.md)."""
