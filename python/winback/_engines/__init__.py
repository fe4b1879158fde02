"""The streaming batch plan shared by the Spark and Dask engines (docs/methods.md#scale).

:mod:`winback._engines.batches` runs on the workers: it cuts a customer-sorted stream of Arrow
record batches into chunks of whole customers and scores each with the local API, in declared
output schemas, and reads the unshuffled input for hygiene with whole-input row numbers.
:mod:`winback._engines.plan` runs on the driver: it checks the arguments, picks the columns to
ship, raises the input's errors and resolves the settings that depend on all the data. The
public engines, :mod:`winback.spark` and :mod:`winback.dask`, keep only their engine's own calls.
"""
