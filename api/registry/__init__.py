"""The registry of organisations and assets: the bulk import (`oxy registry import`)."""
