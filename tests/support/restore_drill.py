"""The restore drill's scratch servers on loopback: a bare ClickHouse 18.16 with the real backup tool beside it.

What verify.restore_drill.kube.KubernetesScratch makes in a cluster (a pod with a shard's identity, the
stack's config and the backup tool reading the same store), as real processes; removed at the run's cleanup.
"""

from dataclasses import dataclass
from pathlib import Path

from components.data.clickhouse.backup import API_USER, Schedule
from components.data.clickhouse.config import ADMIN
from components.settings.model import Settings
from tests.support.servers.backup import API_PASSWORD, start_backup_tool
from tests.support.servers.clickhouse import start_clickhouse
from tests.support.servers.object_store import ObjectStoreNode
from verify.core.checks import Context
from verify.restore_drill.api import BackupApi
from verify.restore_drill.scratch import LoopbackScratch


@dataclass
class LocalScratch:
    """Starts a scratch server per shard reading the given store, bucket and prefix."""

    settings: Settings
    store: ObjectStoreNode
    bucket: str
    prefix: str
    schedule: Schedule
    workdir: Path

    def start(self, context: Context, shard: int, seconds: float) -> LoopbackScratch:
        """A bare server with the shard's identity and the backup tool beside it; stopped at cleanup."""
        workdir = self.workdir / f"{context.run_id}-shard-{shard}"
        node = start_clickhouse(self.settings, workdir / "clickhouse", identity=(shard, f"scratch-{shard}"))
        context.cleanup.add(f"scratch ClickHouse of shard {shard}", node.server.stop)
        tool = start_backup_tool(node, self.store, self.bucket, self.schedule, workdir / "backup", self.prefix)
        context.cleanup.add(f"scratch backup tool of shard {shard}", tool.server.stop)
        return LoopbackScratch(BackupApi(tool.api, (API_USER, API_PASSWORD)), node.ports.native, node.passwords[ADMIN])
