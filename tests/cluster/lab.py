"""Driving the k8s lab from a test: kubectl, helm (3.18 and 4.x), static volumes, the API.

The tests run inside the lab's network namespace (deploy/lab/run.sh starts pytest with
`nsenter --net=/run/netns/k8slab`), so ClusterIPs and pod IPs are reached directly and no
request can leave the lab: its only route out leads nowhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "vtx"
LAB_VALUES = REPO / "deploy" / "lab" / "values.yaml"
RELEASE = "vtx"
NAMESPACE = "vtx"
SERVICES = ("gateway", "splitter", "transcriber", "health")
T = TypeVar("T")


class LabError(AssertionError):
    """A command against the lab failed; the message carries its output."""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 2.0) -> T:
    """Call `probe` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (LabError, httpx.HTTPError) as exc:
            last, result = exc, None
        if result is not None and result is not False:
            return result
        time.sleep(every)
    raise LabError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f": {last}" if last else "")
    )


@dataclass
class Lab:
    """One running lab (deploy/lab/k8s/lab-up.sh) and the release under test."""

    root: Path
    helm4: Path | None
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": str(self.root / "kubeconfig"),
            "HELM_CACHE_HOME": str(self.root / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.root / "helm" / "config"),
            "HELM_DATA_HOME": str(self.root / "helm" / "data"),
        }

    @property
    def volumes(self) -> Path:
        """Where the static PersistentVolumes live (inside state/: lab-down.sh removes it)."""
        return self.root / "state" / "volumes"

    def run(self, *command: str | Path, timeout: float = 120, check: bool = True) -> str:
        proc = subprocess.run(
            [str(c) for c in command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        if check and proc.returncode != 0:
            shown = " ".join(str(c) for c in command)
            raise LabError(f"`{shown}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout + (proc.stderr if not check else "")

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return self.run(
            self.root / "bin" / "kubectl", "-n", NAMESPACE, *args, timeout=timeout, check=check
        )

    def objects(self, *args: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", *args, "-o", "json"))["items"]
        return items

    def helm(self, *args: str, timeout: float = 900, check: bool = True, v4: bool = False) -> str:
        binary = self.helm4 if v4 else self.root / "bin" / "helm"
        if binary is None:
            raise LabError("helm 4 was not fetched (deploy/helm/tools.py)")
        return self.run(binary, *args, "-n", NAMESPACE, timeout=timeout, check=check)

    def chart_args(self, *extra: str) -> list[str]:
        return [str(CHART), "-f", str(LAB_VALUES), *extra]

    # ------------------------------------------------------------ objects

    def pods(self, component: str) -> list[dict[str, Any]]:
        """Running (not terminating) pods of one component."""
        pods = self.objects("pods", "-l", f"app.kubernetes.io/component={component}")
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self, component: str) -> list[dict[str, Any]]:
        def ready(pod: dict[str, Any]) -> bool:
            conditions = pod.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        return [p for p in self.pods(component) if ready(p)]

    def wait_rolled_out(self, components: Iterable[str] = SERVICES, timeout: float = 600) -> None:
        for component in components:
            target = f"deployment/{RELEASE}-{component}"
            wait = f"--timeout={int(timeout)}s"
            self.kubectl("rollout", "status", target, wait, timeout=timeout + 30)

    def service_ip(self, component: str) -> str:
        ip: str = json.loads(
            self.kubectl("get", "service", f"{RELEASE}-{component}", "-o", "json")
        )["spec"]["clusterIP"]
        return ip

    def logs(self, pod: str, container: str) -> str:
        return self.kubectl("logs", pod, "-c", container, timeout=60)

    def wait_job(self, name: str, timeout: float = 600) -> dict[str, Any]:
        """Wait for a Job to succeed; fail at once if it failed."""

        def done() -> dict[str, Any] | None:
            job: dict[str, Any] = json.loads(self.kubectl("get", "job", name, "-o", "json"))
            status = job.get("status", {})
            if status.get("failed"):
                logs = self.kubectl("logs", f"job/{name}", "--all-containers", check=False)
                raise AssertionError(f"job {name} failed:\n{logs}")
            return job if status.get("succeeded") else None

        return wait_for(f"job {name}", done, timeout)

    def job_from_cronjob(self, cronjob: str, name: str) -> None:
        """`kubectl create job NAME --from=cronjob/CRONJOB`, as kubectl 1.20 does it. The lab's
        kubectl (1.33) knows only batch/v1 CronJobs, and 1.20 serves batch/v1beta1."""
        source = json.loads(self.kubectl("get", "cronjob", cronjob, "-o", "json"))
        template = source["spec"]["jobTemplate"]
        self.apply(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": name,
                    "namespace": NAMESPACE,
                    "labels": template.get("metadata", {}).get("labels", {}),
                    "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                    "ownerReferences": [
                        {
                            "apiVersion": source["apiVersion"],
                            "kind": "CronJob",
                            "name": cronjob,
                            "uid": source["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": template["spec"],
            }
        )

    def apply(self, manifest: dict[str, Any]) -> None:
        path = self.root / "state" / f"apply-{manifest['metadata']['name']}.json"
        path.write_text(json.dumps(manifest))
        self.kubectl("apply", "-f", str(path))

    def static_volume(self, name: str, claim: str, owner: int, size: str = "10Gi") -> Path:
        """A hostPath PersistentVolume bound in advance to one claim (no provisioner here)."""
        folder = self.volumes / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, owner, owner)
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"lab-{name}"},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": str(folder), "type": "Directory"},
                    "claimRef": {"namespace": NAMESPACE, "name": claim},
                },
            }
        )
        return folder


class Api:
    """The vtx API through the gateway's Service (its ClusterIP, as the Host too)."""

    def __init__(self, base_url: str, key: str) -> None:
        # No kept-alive connections: pods behind the Service come and go during the tests.
        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def submit(self, media: Path) -> str:
        with media.open("rb") as body:
            response = self.client.post("/v1/jobs", files={"file": (media.name, body)})
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/jobs/{job_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait(self, job_id: str, timeout: float = 600) -> dict[str, Any]:
        """Poll until the job ends; connection errors (a gateway rolling) are retried."""

        def ended() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in ("completed", "failed") else None

        job = wait_for(f"job {job_id}", ended, timeout)
        assert job["status"] == "completed", job
        return job

    def transcript(self, job_id: str) -> str:
        response = self.client.get(f"/v1/jobs/{job_id}/transcript", params={"format": "txt"})
        response.raise_for_status()
        return response.text

    def jobs(self) -> list[dict[str, Any]]:
        response = self.client.get("/v1/jobs", params={"limit": 100})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items
