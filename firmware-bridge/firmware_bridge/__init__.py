"""firmware-bridge: devices that speak their own firmware protocol, turned into the wire contract."""
