"""`oxy demo`: the whole platform on one machine. It assembles every process (gateways over
simulated tanks, ingest, the API) and so sits above them all; the core `oxy` does not import it
(`oxy demo` finds it by name, like every package's subcommands)."""
