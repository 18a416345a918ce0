"""proxmoxer (Debian's python3-proxmoxer 1.2.0) against the Proxmox VE emulator.

Usage: PVE_TOKEN_SECRET=... client.py HOST:PORT USER@REALM TOKEN_NAME ISO_PATH
Runs what a Proxmox script does for an ISO rollout: uploads the ISO with its sha256
(and once with a wrong one), polls the tasks, lists the storage's ISOs, reads a VM's
config and repoints its CD with the config's digest (and once with a stale digest),
resets it and reads its status; a wrong secret is refused. Prints one JSON object with
what proxmoxer returned; the test checks it. The secret comes from the environment.
"""
import hashlib
import json
import os
import sys
import time

from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

NODE = "pve"
STORAGE = "local"
VMID = 101


def wait(api, upid):
    for _ in range(600):
        status = api.nodes(NODE).tasks(upid).status.get()
        if status["status"] == "stopped":
            log = api.nodes(NODE).tasks(upid).log.get(limit=0)
            return {"status": status, "log": [line["t"] for line in log]}
        time.sleep(0.05)
    raise RuntimeError("task did not end: " + upid)


def refused(call):
    try:
        call()
    except ResourceException as e:
        return str(e)
    return None


def main():
    host, user, token_name, iso = sys.argv[1:5]
    secret = os.environ["PVE_TOKEN_SECRET"]
    api = ProxmoxAPI(host, user=user, token_name=token_name, token_value=secret, verify_ssl=False)
    out = {}
    with open(iso, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    storage = api.nodes(NODE).storage(STORAGE)

    with open(iso, "rb") as f:
        upid = storage.upload.post(
            content="iso", **{"checksum-algorithm": "sha256", "checksum": sha}, filename=f
        )
    out["upload"] = {"upid": upid, **wait(api, upid)}

    bad = open(iso, "rb")
    try:
        upid = storage.upload.post(
            content="iso", **{"checksum-algorithm": "sha256", "checksum": "0" * 64}, filename=bad
        )
    finally:
        bad.close()
    out["bad_upload"] = wait(api, upid)

    out["content"] = storage.content.get(content="iso")
    volid = "%s:iso/%s" % (STORAGE, os.path.basename(iso))
    out["volume"] = storage.content(volid).get()

    vm = api.nodes(NODE).qemu(VMID)
    config = vm.config.get()
    out["config_before"] = config
    out["set"] = vm.config.put(ide2=volid + ",media=cdrom", digest=config["digest"])
    out["config_after"] = vm.config.get()
    out["stale"] = refused(lambda: vm.config.put(ide2="none,media=cdrom", digest=config["digest"]))
    out["no_media"] = refused(lambda: vm.config.put(ide2=volid))
    out["status_before"] = vm.status.current.get()
    out["reset"] = wait(api, vm.status.reset.post())
    out["status_after"] = vm.status.current.get()
    out["resources"] = api.cluster.resources.get(type="vm")

    wrong = ProxmoxAPI(host, user=user, token_name=token_name, token_value=secret + "x", verify_ssl=False)
    out["wrong_secret"] = refused(lambda: wrong.nodes(NODE).storage(STORAGE).content.get())
    out["missing_vm"] = refused(lambda: api.nodes(NODE).qemu(999).config.get())
    print(json.dumps(out))


main()
