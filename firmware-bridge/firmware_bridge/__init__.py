"""firmware-bridge: devices speaking their own firmware protocol, turned into the wire contract."""
