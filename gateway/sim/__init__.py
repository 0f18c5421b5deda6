"""LOX tank simulator: Modbus TCP servers that behave like hospital liquid-oxygen tanks."""
