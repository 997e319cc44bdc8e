"""BFT ordering: the QBFT protocol as a pure state machine.

`messages` defines what validators say to each other (canonical RLP, secp256k1
signatures, commit certificates a client can check knowing only the validator set);
`qbft` is one validator's state machine, events in and actions out. Transport, timers,
storage and execution are the driver's: this package does no I/O and keeps no clock.
`docs/consensus.md` describes the protocol as implemented.
"""
