"""Input data: record readers (`readers`), tokenization of records (`tokenize`), the one row
builder (`rows`), the SFT Grain batch iterator (`loader`) and generated data (`synthetic`).

Kept free of heavy imports: `jaxreason.data.readers` loads pyarrow, `datasets` and Grain only
inside the functions that need them.
"""
