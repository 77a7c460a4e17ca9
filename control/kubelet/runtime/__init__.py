"""Container runtimes behind a CRI-like interface (control.kubelet.runtime.protocol)."""
