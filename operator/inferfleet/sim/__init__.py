"""The local simulated fleet: binaries installer, control-plane harness and fleet simulator."""
