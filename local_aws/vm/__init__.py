"""The VM backend: a real Debian guest under QEMU boots the launch template's user data."""
