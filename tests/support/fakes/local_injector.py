"""A local fault injector: kill -9 or SIGSTOP real server processes, standing in for a pod-level fault.

No cluster runs here. The processes a workload's pod would run (for the coordinator: the JVM and its
metrics exporter) are killed and restarted, or paused and continued, while verify's own scenario
code probes, loads and checks them: only the injection is the test's.
"""

from dataclasses import dataclass, field

from tests.support.servers.process import ServerProcess, port_open
from verify.failover.scenarios import Fault


@dataclass
class LocalInjector:
    """Breaks the processes of each workload; `how` is kill (kill -9, restart at the end) or stop (SIGSTOP).

    `pods` names the processes of each pod, for a fault aimed at one pod (Fault.pod) of a workload of several.
    """

    processes: dict[str, list[ServerProcess]]
    how: str = "kill"
    pods: dict[str, list[ServerProcess]] = field(default_factory=dict)
    broken: list[ServerProcess] = field(default_factory=list)
    restart_deadline: float = 180.0

    def method(self, fault: Fault) -> str | None:
        """Kills and pauses stand in for pod kills; the local machine cannot partition or stress."""
        if fault.kind != "pod-kill":
            return None
        return "local kill -9, then restart" if self.how == "kill" else "local SIGSTOP, then SIGCONT"

    def inject(self, fault: Fault) -> str:
        """Kill or pause every process of the workloads, or of the one pod the fault names."""
        hit = self.pods[fault.pod] if fault.pod else [p for w in fault.workloads for p in self.processes[w]]
        for process in hit:
            process.kill() if self.how == "kill" else process.pause()
            self.broken.append(process)
        return f"{'killed' if self.how == 'kill' else 'stopped'} " + ", ".join(p.name for p in self.broken)

    def end(self, fault: Fault) -> None:
        """Restart (or continue) what was broken, as a pod's controller would; nothing once done."""
        while self.broken:
            process = self.broken.pop(0)
            process.start(self.restart_deadline) if self.how == "kill" else process.resume()

    def ready(self, fault: Fault) -> bool:
        """Every process of the workloads runs and accepts connections."""
        return all(
            p.process is not None and p.process.poll() is None and port_open(p.port)
            for workload in fault.workloads
            for p in self.processes[workload]
        )

    def remove_all(self) -> None:
        """Nothing was created."""
