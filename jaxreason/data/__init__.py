"""Input data: record readers and Grain pipelines (`readers`); more modules may join.

Kept free of heavy imports: `jaxreason.data.readers` loads pyarrow, `datasets` and Grain only
inside the functions that need them.
"""
