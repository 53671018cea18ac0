"""Data sets and the LightningDataModule."""
