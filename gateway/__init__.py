"""The host's front door: JSON-RPC over HTTP, the node's assembly and the command line."""
