"""What is stored and how it is ordered.

The SQL schema and its repository (`models`, `store`), the pool of waiting transactions
(`mempool`) and the ordering service that turns the pool into blocks (`ordering`).
Execution is handed in through `ordering.BlockExecutor`; this package never executes.
"""
