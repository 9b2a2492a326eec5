"""The virtual twin: a QEMU VM with one network namespace per lab host."""
