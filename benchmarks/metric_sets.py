"""Metric lists the benchmarks share (a module with no heavy imports)."""

TEN_METRICS = [
    "cpu.usage_percent",
    "cpu.user_percent",
    "cpu.system_percent",
    "cpu.iowait_percent",
    "cpu.load1",
    "memory.usage_percent",
    "memory.used_bytes",
    "memory.available_bytes",
    "network.bytes_sent_per_s",
    "network.bytes_recv_per_s",
]
