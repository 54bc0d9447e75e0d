"""Pods and containers the way the kubelet asks for them, for the CRI tests."""
import os
import time
import uuid

from integration.cri.cri import BUSYBOX
from integration.cri.pb.cri import api_pb2 as api


class Pod:
    """A running pod sandbox (RunPodSandbox) and the containers made in it; remove() stops and
    removes everything, as the kubelet does (StopPodSandbox kills what still runs)."""

    def __init__(self, cri, handler, name, pid=api.CONTAINER):
        self.cri, self.client = cri, cri.cri
        uid = uuid.uuid4().hex[:12]
        self.log_dir = os.path.join(cri.dir, "logs", uid)
        os.makedirs(self.log_dir)
        self.config = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="pyrunc-test"), hostname=name,
            log_directory=self.log_dir,
            linux=api.LinuxPodSandboxConfig(
                cgroup_parent=f"{cri.cgroup_parent}/pod{uid}",
                security_context=api.LinuxSandboxSecurityContext(namespace_options=api.NamespaceOption(pid=pid))))
        self.pid_mode = pid
        self.id = self.client.RunPodSandbox(api.RunPodSandboxRequest(config=self.config,
                                                                     runtime_handler=handler)).pod_sandbox_id

    def container(self, name, *command, memory=0, start=True):
        cfg = api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name), image=api.ImageSpec(image=BUSYBOX), command=list(command),
            log_path=f"{name}.log",
            linux=api.LinuxContainerConfig(
                resources=api.LinuxContainerResources(memory_limit_in_bytes=memory),
                security_context=api.LinuxContainerSecurityContext(
                    namespace_options=api.NamespaceOption(pid=self.pid_mode))))
        cid = self.client.CreateContainer(api.CreateContainerRequest(pod_sandbox_id=self.id, config=cfg,
                                                                     sandbox_config=self.config)).container_id
        if start:
            self.client.StartContainer(api.StartContainerRequest(container_id=cid))
        return cid

    def status(self, cid):
        return self.client.ContainerStatus(api.ContainerStatusRequest(container_id=cid)).status

    def wait_exited(self, cid, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(cid)
            if st.state == api.CONTAINER_EXITED:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"container {cid} not exited after {timeout}s: {st}")
            time.sleep(0.1)

    def log(self, name):
        with open(os.path.join(self.log_dir, f"{name}.log")) as f:
            return f.read()

    def sandbox_pid(self):
        info = self.client.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=self.id, verbose=True)).info
        import json
        return json.loads(info["info"])["pid"]

    def remove(self):
        self.client.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=self.id))
        self.client.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=self.id))
