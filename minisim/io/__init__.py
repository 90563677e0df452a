"""Reading and writing recordings: safe output paths, Zarr stores and their integrity."""
